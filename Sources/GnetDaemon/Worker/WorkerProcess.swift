#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A worker: one process, one thread, one event loop serving the listeners the supervisor
/// passed down. It tells the supervisor "ready" over its status channel once serving; on
/// "drain" it stops accepting, lets its connections finish and exits at the latest after the
/// drain timeout; if the supervisor goes away (the channel closes) it drains too.
public enum WorkerProcess {
    /// What a worker is started as (its `argv[0]`, shown by `ps`): `gnetd: worker 0 (generation 3)`.
    static func title(name: String, index: Int, generation: Int) -> String {
        "\(name): worker \(index) (generation \(generation))"
    }

    /// Whether this process was started as one of `identity`'s workers: its title and the
    /// spec in its environment (`--worker`, as earlier versions started them, still counts).
    static func isWorker(_ identity: DaemonIdentity, arguments: [String]) -> Bool {
        guard getenv(WorkerSpec.environmentKey) != nil else { return false }
        return CommandLine.arguments.first?.hasPrefix("\(identity.name): worker ") == true || arguments == ["--worker"]
    }

    /// Runs the worker described by the spec whose memfd `GNETD_WORKER` names, with the daemon's
    /// service `kinds`; returns the exit code.
    static func run(identity: DaemonIdentity, kinds: [ServiceKind]) -> Int32 {
        LogLine.role = "worker"
        guard let raw = getenv(WorkerSpec.environmentKey), let fd = Int32(String(cString: raw)), let spec = WorkerSpec.read(fd: fd) else {
            LogLine.write(.error, "missing or malformed \(WorkerSpec.environmentKey)")
            return 2
        }
        // `comm` (top, /proc/PID/stat) says what it is too: at most 15 bytes, `gnetd: worker 0`.
        _ = gnet_set_thread_name(String("\(identity.name): worker \(spec.index)".utf8.prefix(15)) ?? identity.name)
        LogLine.role = "worker \(spec.index) gen \(spec.generation)"
        do {
            return try serve(spec, identity: identity, kinds: kinds)
        } catch {
            LogLine.write(.error, "cannot serve: \(error)")
            // The supervisor gets the reason too, for the reload or status it reports.
            let oneLine = String(String.UnicodeScalarView(String(describing: error).unicodeScalars.map { $0 == "\n" ? " " : $0 }))
            var line = "failed: \(oneLine.prefix(1000))\n"
            _ = line.withUTF8 { b in Result { () throws(SystemError) in try writeAll(spec.statusFD, UnsafeRawBufferPointer(b), socket: true) } }
            return 1
        }
    }

    private static func serve(_ spec: WorkerSpec, identity: DaemonIdentity, kinds: [ServiceKind]) throws -> Int32 {
        let page = try StatsPage.attach(fd: spec.statsFD)
        let slot = page.slot(spec.slot)
        gnet_counter_store(&slot.pointee.pid, UInt64(getpid()))
        // The services, decoded again from the text the supervisor validated.
        let config = try ConfigLoader.parse(spec.configText, file: spec.configFile, kinds: kinds, defaultControlSocket: identity.controlSocket)
        let services = config.services
        let logger = DaemonGnetLogger(level: LogLevel.allCases.first { $0.name == spec.logLevel } ?? .info)
        // Each service's context, its figures where SlotLayout puts them.
        var contexts: [ServiceContext] = []
        let layout = SlotLayout(config, kinds: kinds)
        guard layout.fits else { throw WorkerError("the services' figures do not fit in a stats slot") }
        let figures = page.serviceCounters(spec.slot)
        var serviceKinds: [ServiceKind] = []
        for (s, entry) in zip(services, layout.entries) {
            guard let kind = kinds.first(where: { $0.name == s.kind }) else { throw WorkerError("service \(s.name): unknown kind \(s.kind)") }
            serviceKinds.append(kind)
            contexts.append(ServiceContext(serviceName: s.name, workerIndex: spec.index, generation: spec.generation, logger: logger,
                                           counterBase: figures + entry.counters, counterNames: entry.counterNames,
                                           histogramBase: figures + entry.histograms, histogramNames: entry.histogramNames))
            contexts.last?.page = page
            contexts.last?.drainIdleGrace = .milliseconds(config.drainIdleGrace.milliseconds)
            contexts.last?.identity = identity
            contexts.last?.kinds = kinds
        }
        // The loop counts each service's connections and traffic in its block (listener group = service).
        let trafficBlocks = layout.entries.map { page.traffic(spec.slot, $0) }
        // What a service needs done as the starting user (logs in root's directories), then the
        // switch to `user` before anything a client can reach is made.
        var prepared: [Any?] = []
        for (i, s) in services.enumerated() {
            do { prepared.append(try serviceKinds[i].prepare(s.settings, contexts[i])) } catch { throw WorkerError("service \(s.name): \(error)") }
        }
        if let user = spec.user, getuid() == 0 {
            guard let pw = getpwnam(user) else { throw WorkerError("no such user \(user)") }
            guard initgroups(user, pw.pointee.pw_gid) == 0, setgid(pw.pointee.pw_gid) == 0, setuid(pw.pointee.pw_uid) == 0 else {
                throw WorkerError("cannot switch to user \(user): \(String(cString: strerror(errno)))")
            }
        }
        var listeners: [Listener] = []
        for l in spec.listeners {
            var listener = try Listener.adopt(fd: l.fd, address: NetworkAddress(parsing: l.address))
            listener.group = l.service
            if l.shared { listener.extraInterest = gnet_EPOLLEXCLUSIVE() }
            let s = services[l.service]
            listener.limits = ConnectionLimits(writeBufferCap: s.writeBufferCap?.bytes ?? 0,
                                               idleTimeout: s.idleTimeout.map { .milliseconds($0.milliseconds) },
                                               maxConnections: s.maxConnections ?? 0)
            listeners.append(listener)
        }
        var handlers: [any EventHandler] = []
        for (i, s) in services.enumerated() {
            do { handlers.append(try serviceKinds[i].make(s.settings, prepared[i], contexts[i])) } catch { throw WorkerError("service \(s.name): \(error)") }
        }
        let channel = WorkerChannel(page: page, slot: spec.slot, fd: spec.statusFD, drainTimeout: .milliseconds(spec.drainTimeoutMs),
                                    heartbeat: .milliseconds(spec.heartbeatMs))
        channel.buildLine = BuildStamp.current(identity).statusLine
        channel.reopenLogs = { for c in contexts { for reopen in c.reopenLogs { reopen() } } }
        var options = Options()
        options.readBufferCap = services.compactMap { $0.readBufferCap?.bytes }.max() ?? 0
        options.logger = logger
        let router = ServiceRouter(handlers: handlers, other: channel, drainIdleGrace: .milliseconds(config.drainIdleGrace.milliseconds))
        channel.servicesDraining = { loop in router.beginDraining(loop) }
        let engine = try Engine(handler: router, listeners: listeners, options: options,
                                counters: withUnsafeMutablePointer(to: &slot.pointee.counters) { $0 }, groupCounters: trafficBlocks)
        channel.engine = engine
        // SIGTERM straight to a worker (systemd's KillMode, an operator) means drain too.
        // Test builds of a deployment can make a worker hang on purpose, to prove the watchdog:
        // GNETD_TEST_HOOKS=spin-on-usr2 in the daemon's environment makes SIGUSR2 spin the loop.
        let spinOnUSR2 = getenv("GNETD_TEST_HOOKS").map { String(cString: $0).split(separator: ",").contains("spin-on-usr2") } ?? false
        try engine.handleSignals([SIGTERM, SIGINT, SIGQUIT, SIGHUP] + (spinOnUSR2 ? [SIGUSR2] : [])) { sig in
            if sig == SIGUSR2 { spinForever() }
            if sig == SIGHUP { return }  // reloads are the supervisor's business
            channel.drain(engine.eventLoop)
        }
        _ = fcntl(spec.statusFD, F_SETFD, FD_CLOEXEC)
        try engine.run()
        page.setState(spec.slot, .exited)
        return 0
    }
}

/// The test hook's hang: a loop that never returns to its poller.
private func spinForever() -> Never {
    var n: UInt64 = 0
    while true { n = gnet_spin_step(n) }
}

struct WorkerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The worker's end of its status channel, watched by the loop without counting as a client
/// connection: says "ready" once the loop serves, obeys "drain" and "stop", and drains if the
/// supervisor disappears (the channel reads end-of-file).
final class WorkerChannel: EventHandler {
    let page: StatsPage
    let slot: Int
    let fd: Int32
    let drainTimeout: Duration
    /// How often the idle loop wakes for the supervisor's watchdog (zero: never).
    let heartbeat: Duration
    unowned(unsafe) var engine: Engine! = nil
    /// Called on "reopen" (SIGUSR1 to the supervisor): access logs start new files.
    var reopenLogs: () -> Void = {}
    /// Called once draining begins: the services finish what is in flight and let idle
    /// connections go (kept-alive HTTP connections would otherwise last to the drain timeout).
    var servicesDraining: (EventLoop) -> Void = { _ in }
    /// Sent before "ready": which build this worker runs (`BuildStamp.statusLine`).
    var buildLine = ""
    private var open = true
    private var draining = false
    private var pending: [UInt8] = []

    init(page: StatsPage, slot: Int, fd: Int32, drainTimeout: Duration, heartbeat: Duration) {
        self.page = page; self.slot = slot; self.fd = fd; self.drainTimeout = drainTimeout; self.heartbeat = heartbeat
    }

    func onBoot(_ engine: Engine) -> Action {
        let loop = engine.eventLoop
        do {
            try loop.watchReadable(fd) { [unowned self] in self.readChannel(loop) }
        } catch {
            LogLine.write(.error, "cannot watch the status channel: \(error)")
            return .shutdown
        }
        page.setState(slot, .serving)
        if !buildLine.isEmpty { say(buildLine) }
        say("ready")
        if heartbeat > .zero { beat(loop) }
        return .none
    }

    /// Wakes the loop every `heartbeat`: each turn moves the iteration count the watchdog reads.
    private func beat(_ loop: EventLoop) {
        loop.schedule(after: heartbeat) { [unowned self] in self.beat(loop) }
    }

    /// Sends one status line whole (a short send goes on with the rest). A supervisor that
    /// cannot be told is gone or stuck; the channel's end-of-file then drains this worker.
    private func say(_ line: String) {
        var text = line + "\n"
        let result = text.withUTF8 { b in Result { () throws(SystemError) in try writeAll(fd, UnsafeRawBufferPointer(b), socket: true) } }
        if case .failure(let error) = result { LogLine.write(.error, "cannot tell the supervisor \"\(line)\": \(error)") }
    }

    private func readChannel(_ loop: EventLoop) {
        var chunk = [UInt8](repeating: 0, count: 512)
        let received = Result { () throws(SystemError) in
            try syscall(blocking: true, where: "recv") { recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT)) }
        }
        let n: Int
        switch received {
        case .success(.wouldBlock): return
        case .success(.processed(let count)): n = count
        case .failure: n = 0  // a broken channel is a gone supervisor
        }
        if n == 0 {
            // The supervisor is gone: finish what we have, then exit.
            loop.unwatch(fd)
            close(fd)
            open = false
            drain(loop)
            return
        }
        pending += chunk[0..<n]
        var start = 0
        defer {
            pending.removeFirst(start)  // once per read, not per line
            if pending.count > 4096 { pending.removeAll() }
        }
        while let nl = pending[start...].firstIndex(of: 10) {
            let line = String(decoding: pending[start..<nl], as: UTF8.self)
            start = nl + 1
            switch line {
            case "drain": drain(loop)
            case "stop": engine.stop()
            case "reopen": reopenLogs()
            default: break
            }
        }
    }

    /// Stops accepting, then stops the engine once no client connection is left, or at the
    /// drain timeout, whichever comes first.
    func drain(_ loop: EventLoop) {
        guard !draining else { return }
        draining = true
        page.setState(slot, .draining)
        loop.stopAccepting()
        servicesDraining(loop)
        let deadline = gnet_monotonic_ns() + drainTimeout.nanoseconds
        func check() {
            if loop.connectionCount <= 0 || gnet_monotonic_ns() >= deadline {
                engine.stop()
                return
            }
            loop.schedule(after: .milliseconds(20)) { check() }
        }
        check()
    }
}

