#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A control client: who it is, and when it last sent something.
final class ControlSession {
    /// Root, the daemon's uid, or its user's uid or gid (SO_PEERCRED at connect): may reload
    /// and stop, and is never locked out by other clients.
    let privileged: Bool
    /// Monotonic ns of its last request bytes.
    var lastActive: Int64

    init(privileged: Bool) {
        self.privileged = privileged
        lastActive = gnet_monotonic_ns()
    }
}

/// Requests larger than this are refused and the connection closed.
let maxControlRequest = 64 * 1024
/// Requests answered per client and turn of the supervisor's loop.
let requestsPerTurn = 8
/// Control clients at once. Past it an unprivileged newcomer is turned away, and a privileged
/// one takes the place of the client silent the longest (an unprivileged one if any).
let maxControlClients = 256

/// The control protocol (gnetctl(1)): one JSON object per line each way. `stats` and `status` are
/// open to anyone who can reach the socket; `reload` and `stop` need root or the daemon's own
/// uid or gid (checked with SO_PEERCRED). A malformed, unknown or oversized request gets an
/// error response; nothing a client sends can harm the daemon.
extension Supervisor {
    func handleControl(_ c: Conn, _ session: ControlSession) -> Action {
        session.lastActive = gnet_monotonic_ns()
        // One answer per request line, in order. A client that sends requests without reading
        // the answers finds its output full: its next requests wait (the loop stops reading it
        // and hands them back once it has read), so no answer is ever dropped.
        // At most `requestsPerTurn` answers per turn of the loop: a client flooding requests
        // takes its turn like the others, and the operator's gnetctl is not kept waiting.
        var answered = 0
        let outcome = LineReader.forEachLine(c, limit: maxControlRequest) { line in
            if c.outboundIsFull { return false }
            if answered == requestsPerTurn {
                c.wake()
                return false
            }
            answer(c, line)
            answered += 1
            return c.isOpen
        }
        if outcome == .tooLong {
            c.discard()
            respond(c.id, ["ok": false, "error": "request larger than \(maxControlRequest) bytes"])
            return .close
        }
        return .none
    }

    /// A new control client: admitted while there is room; past `maxControlClients` a
    /// privileged one (root, the daemon's user) takes the place of the client silent the
    /// longest, so a crowd of idle connections can never lock the operator out.
    func admitControlClient(_ c: Conn) -> Action {
        let session = ControlSession(privileged: mayChangeState(c))
        if controlClients.count >= maxControlClients {
            let evictable = controlClients.compactMap { id, s -> (ConnID, Int64, Bool)? in (id, s.lastActive, s.privileged) }
            guard session.privileged,
                  let victim = evictable.min(by: { ($0.2 ? 1 : 0, $0.1) < ($1.2 ? 1 : 0, $1.1) }) else {
                log.warning("control: \(maxControlClients) clients connected; an unprivileged one was turned away")
                respond(c.id, ["ok": false, "error": "too many control clients (\(maxControlClients)); try again later"])
                return .close
            }
            log.warning("control: \(maxControlClients) clients connected; the one silent the longest was disconnected to let a privileged client in")
            controlClients.removeValue(forKey: victim.0)
            loop.conn(victim.0)?.close()
        }
        controlClients[c.id] = session
        c.context = session
        return .none
    }

    private func answer(_ c: Conn, _ line: UnsafeRawBufferPointer) {
        guard case .object(let request)? = try? JSONParser.parse(line) else {
            respond(c.id, ["ok": false, "error": "malformed request: send one JSON object per line, e.g. {\"command\": \"stats\"}"])
            return
        }
        guard let command = request["command"]?.string else {
            respond(c.id, ["ok": false, "error": "missing \"command\" (stats, status, metrics, reload or stop)"])
            return
        }
        switch command {
        case "stats":
            respond(c.id, statsReport())
        case "status":
            respond(c.id, statusReport())
        case "metrics":
            respond(c.id, ["ok": true, "text": .string(PrometheusExposition.render(MetricsSnapshot(page: page, identity: identity, kinds: kinds)))])
        case "reload", "stop":
            guard (c.context as? ControlSession)?.privileged == true else {
                respond(c.id, ["ok": false, "error": "permission denied: \(command) needs root or the gnetd user"])
                return
            }
            if command == "reload" {
                beginReload(reply: c.id)
            } else {
                stopReplies.append(c.id)
                beginStop(force: false)
            }
        default:
            respond(c.id, ["ok": false, "error": "unknown command \"\(command.prefix(64))\" (stats, status, metrics, reload or stop)"])
        }
    }

    func mayChangeState(_ c: Conn) -> Bool {
        var pid: Int32 = 0
        var uid: UInt32 = 0, gid: UInt32 = 0
        guard gnet_peer_credentials(c.fd, &pid, &uid, &gid) == 0 else { return false }
        if uid == 0 || uid == getuid() { return true }
        if let owner = userIDs { return uid == owner.uid || gid == owner.gid }
        return false
    }

    func respond(_ id: ConnID?, _ answer: JSONValue) {
        guard let id, let c = loop.conn(id) else { return }
        var data: [UInt8] = []
        answer.encode(into: &data)
        data.append(UInt8(ascii: "\n"))
        let result = data.withUnsafeBytes { b in Result { () throws(GnetError) in try c.write(b) } }
        if case .failure(let error) = result, error == .outboundBufferFull {
            // An answer that cannot be delivered (a reload's outcome to a client that reads
            // nothing): the client is let go rather than left with a gap in its answers.
            log.warning("control: a client's answers are not being read; disconnected")
            c.close()
        }
    }

    // MARK: reports

    /// Each of a worker's services with its counters' current values, in its slot's layout.
    func serviceCounters(_ w: WorkerSlot) -> [(service: String, kind: String, values: [(String, UInt64)])] {
        let base = page.serviceCounters(w.statsSlot)
        return w.layout.entries.map { entry in
            (entry.service, entry.kind, entry.counterNames.enumerated().map { i, name in (name, gnet_counter_load(base + entry.counters + i)) })
        }
    }

    /// Each of a worker's services with the traffic its loop counted for it.
    func serviceTraffic(_ w: WorkerSlot) -> [(service: String, traffic: LoopCounters)] {
        w.layout.entries.map { entry in (entry.service, LoopCounters(page.traffic(w.statsSlot, entry))) }
    }

    /// A service's traffic as the stats answer shows it.
    static func trafficJSON(_ t: LoopCounters) -> JSONValue {
        ["connections_active": .init(t.connectionsOpen), "connections_accepted": .init(t.connectionsAccepted),
         "connections_rejected": .init(t.connectionsRejected), "connections_closed": .init(t.connectionsClosed),
         "bytes_in": .init(t.bytesIn), "bytes_out": .init(t.bytesOut), "datagrams_in": .init(t.datagramsIn),
         "datagrams_out": .init(t.datagramsOut), "errors": .init(t.errors)]
    }

    func statsReport() -> JSONValue {
        var list: [JSONValue] = []
        var serviceTotals = retired.services
        var trafficTotals = retired.serviceTraffic
        var datagramsIn = retired.datagramsIn, datagramsOut = retired.datagramsOut
        var active: UInt64 = 0, accepted = retired.accepted, rejected = retired.rejected, bytesIn = retired.bytesIn, bytesOut = retired.bytesOut
        for w in workers.sorted(by: { ($0.generation, $0.index) < ($1.generation, $1.index) }) {
            let c = page.counters(w.statsSlot)
            active += c.connectionsOpen
            accepted += c.connectionsAccepted
            rejected += c.connectionsRejected
            bytesIn += c.bytesIn
            bytesOut += c.bytesOut
            datagramsIn += c.datagramsIn
            datagramsOut += c.datagramsOut
            let traffic = serviceTraffic(w)
            for (service, t) in traffic {
                if trafficTotals[service] == nil { trafficTotals[service] = t } else { trafficTotals[service]?.add(t) }
            }
            list.append([
                "index": .init(w.index), "pid": .init(w.pid), "generation": .init(w.generation), "state": .string(page.state(w.statsSlot).name),
                "uptime_s": .double((w.age * 10).rounded() / 10),
                "connections_active": .init(c.connectionsOpen), "connections_accepted": .init(c.connectionsAccepted),
                "connections_closed": .init(c.connectionsClosed), "connections_rejected": .init(c.connectionsRejected),
                "bytes_in": .init(c.bytesIn), "bytes_out": .init(c.bytesOut), "read_calls": .init(c.readCalls), "write_calls": .init(c.writeCalls),
                "loop_iterations": .init(c.loopIterations), "errors": .init(c.errors),
                "datagrams_in": .init(c.datagramsIn), "datagrams_out": .init(c.datagramsOut),
                "traffic": .object(Dictionary(traffic.map { ($0.service, Self.trafficJSON($0.traffic)) }, uniquingKeysWith: { _, last in last })),
                "services": .object(Dictionary(serviceCounters(w).map { s in
                    (s.service, JSONValue.object(Dictionary(s.values.map { ($0.0, JSONValue($0.1)) }, uniquingKeysWith: { _, last in last })))
                }, uniquingKeysWith: { _, last in last })),
            ])
            for s in serviceCounters(w) { for (name, v) in s.values { serviceTotals[s.service, default: [:]][name, default: 0] &+= v } }
        }
        var supervisor: [String: JSONValue] = [
            "pid": .init(getpid()), "name": .string(identity.name), "version": .string(identity.version), "generation": .init(generation),
            "uptime_s": .double((Double(gnet_monotonic_ns() - startedAt) / 1e8).rounded() / 10),
            "reloads_ok": .init(reloadsOK), "reloads_failed": .init(reloadsFailed), "respawns": .init(respawns),
            "config": .string(configPath ?? "<built-in>"), "workers_configured": .init(workerCount),
        ]
        if let lastError { supervisor["last_error"] = .string(lastError) }
        let totals = serviceTotals.mapValues { counters in JSONValue.object(counters.mapValues { JSONValue($0) }) }
        return [
            "ok": true, "supervisor": .object(supervisor), "workers": .array(list),
            "totals": ["connections_active": .init(active), "connections_accepted": .init(accepted), "connections_rejected": .init(rejected),
                       "bytes_in": .init(bytesIn), "bytes_out": .init(bytesOut), "services": .object(totals),
                       "datagrams_in": .init(datagramsIn), "datagrams_out": .init(datagramsOut),
                       "traffic": .object(trafficTotals.mapValues { Self.trafficJSON($0) })],
        ]
    }

    func statusReport() -> JSONValue {
        let state = stopping ? "stopping" : (starting ? "starting" : (reload != nil ? "reloading" : "serving"))
        var services: [JSONValue] = []
        for s in config.services {
            services.append(["name": .string(s.name), "protocol": .string(s.kind), "listen": .init(sockets.boundAddresses(for: s)),
                             "counters": .init(kinds.first { $0.name == s.kind }?.counterNames ?? [])])
        }
        let details: [JSONValue] = workers.sorted { ($0.generation, $0.index) < ($1.generation, $1.index) }.map { w in
            var d: [String: JSONValue] = ["index": .init(w.index), "pid": .init(Int(w.pid)), "generation": .init(w.generation),
                                          "state": .string(page.state(w.statsSlot).name), "uptime_s": .double((w.age * 10).rounded() / 10)]
            if let e = workerLastErrors[w.index] { d["last_error"] = .string(e) }
            if let b = w.build { d.merge(b.json) { _, stamp in stamp } }
            return .object(d)
        }
        var answer: [String: JSONValue] = [
            "ok": true, "state": .string(state), "pid": .init(getpid()), "name": .string(identity.name), "version": .string(identity.version),
            "generation": .init(generation), "workers": .init(workers.filter { $0.generation == generation }.count), "services": .array(services),
            "config": .string(configPath ?? "<built-in>"), "revision": .string(BuildInfo.revision), "build": .string(BuildInfo.buildID ?? "unknown"),
            "worker_details": .array(details), "exec_count": .init(execCount),
        ]
        if let binary { answer["binary"] = .string(binary.path) }
        if let lastError { answer["last_error"] = .string(lastError) }
        return .object(answer)
    }
}
