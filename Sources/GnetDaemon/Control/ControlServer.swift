#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet

/// A control client's partial request line.
final class ControlSession {
    var pending: [UInt8] = []
}

/// Requests larger than this are refused and the connection closed.
let maxControlRequest = 64 * 1024

/// The control protocol (DESIGN §8): one JSON object per line each way. `stats` and `status` are
/// open to anyone who can reach the socket; `reload` and `stop` need root or the daemon's own
/// uid or gid (checked with SO_PEERCRED). A malformed, unknown or oversized request gets an
/// error response; nothing a client sends can harm the daemon.
extension Supervisor {
    func handleControl(_ c: Conn, _ session: ControlSession) -> Action {
        session.pending += c.readBytes()
        while let nl = session.pending.firstIndex(of: 10) {
            let line = Array(session.pending[..<nl])
            session.pending.removeFirst(nl + 1)
            if line.count > maxControlRequest {
                respond(c.id, ["ok": false, "error": "request larger than \(maxControlRequest) bytes"])
                return .close
            }
            if line.isEmpty || line == [13] { continue }
            answer(c, line)
        }
        if session.pending.count > maxControlRequest {
            session.pending.removeAll()
            respond(c.id, ["ok": false, "error": "request larger than \(maxControlRequest) bytes"])
            return .close
        }
        return .none
    }

    private func answer(_ c: Conn, _ line: [UInt8]) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)), let request = object as? [String: Any] else {
            respond(c.id, ["ok": false, "error": "malformed request: send one JSON object per line, e.g. {\"command\": \"stats\"}"])
            return
        }
        guard let command = request["command"] as? String else {
            respond(c.id, ["ok": false, "error": "missing \"command\" (stats, status, reload or stop)"])
            return
        }
        switch command {
        case "stats":
            respond(c.id, statsReport())
        case "status":
            respond(c.id, statusReport())
        case "reload", "stop":
            guard mayChangeState(c) else {
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
            respond(c.id, ["ok": false, "error": "unknown command \"\(command.prefix(64))\" (stats, status, reload or stop)"])
        }
    }

    private func mayChangeState(_ c: Conn) -> Bool {
        var pid: Int32 = 0
        var uid: UInt32 = 0, gid: UInt32 = 0
        guard gnet_peer_credentials(c.fd, &pid, &uid, &gid) == 0 else { return false }
        if uid == 0 || uid == getuid() { return true }
        if let user = config.user, let pw = getpwnam(user) { return uid == pw.pointee.pw_uid || gid == pw.pointee.pw_gid }
        return false
    }

    func respond(_ id: ConnID?, _ object: [String: Any]) {
        guard let id, let c = loop.conn(id) else { return }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(10)
        _ = try? data.withUnsafeBytes { b in try Result { () throws(GnetError) in try c.write(b) }.get() }
    }

    // MARK: reports

    func statsReport() -> [String: Any] {
        var list: [[String: Any]] = []
        var active: UInt64 = 0, accepted = retired.accepted, rejected = retired.rejected, bytesIn = retired.bytesIn, bytesOut = retired.bytesOut
        for w in workers.sorted(by: { ($0.generation, $0.index) < ($1.generation, $1.index) }) {
            let c = page.counters(w.statsSlot)
            active += c.connectionsOpen
            accepted += c.connectionsAccepted
            rejected += c.connectionsRejected
            bytesIn += c.bytesIn
            bytesOut += c.bytesOut
            list.append([
                "index": w.index, "pid": Int(w.pid), "generation": w.generation, "state": page.state(w.statsSlot).name,
                "uptime_s": (w.age * 10).rounded() / 10,
                "connections_active": c.connectionsOpen, "connections_accepted": c.connectionsAccepted,
                "connections_closed": c.connectionsClosed, "connections_rejected": c.connectionsRejected,
                "bytes_in": c.bytesIn, "bytes_out": c.bytesOut, "read_calls": c.readCalls, "write_calls": c.writeCalls,
                "loop_iterations": c.loopIterations, "errors": c.errors,
            ])
        }
        var supervisor: [String: Any] = [
            "pid": Int(getpid()), "version": Supervisor.version, "generation": generation,
            "uptime_s": (Double(gnet_monotonic_ns() - startedAt) / 1e8).rounded() / 10,
            "reloads_ok": reloadsOK, "reloads_failed": reloadsFailed, "respawns": respawns,
            "config": configPath ?? "<built-in>", "workers_configured": workerCount,
        ]
        if let lastError { supervisor["last_error"] = lastError }
        return [
            "ok": true, "supervisor": supervisor, "workers": list,
            "totals": ["connections_active": active, "connections_accepted": accepted, "connections_rejected": rejected,
                       "bytes_in": bytesIn, "bytes_out": bytesOut],
        ]
    }

    func statusReport() -> [String: Any] {
        let state = stopping ? "stopping" : (starting ? "starting" : (reload != nil ? "reloading" : "serving"))
        var services: [[String: Any]] = []
        for s in config.services {
            services.append(["name": s.name, "protocol": s.protocol.rawValue, "listen": sockets.boundAddresses(for: s)])
        }
        return [
            "ok": true, "state": state, "pid": Int(getpid()), "version": Supervisor.version, "generation": generation,
            "workers": workers.filter { $0.generation == generation }.count, "services": services,
            "config": configPath ?? "<built-in>",
        ]
    }
}
