#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import Logging

/// The gnetd master process: binds and holds every listening socket, starts one worker process
/// per core, replaces crashed workers, reloads and drains generations, answers the control
/// socket and reports to systemd. One thread, one event loop (a Gnet engine whose only listener
/// is the control socket; signals arrive through a signalfd, worker status over socket pairs).
final class Supervisor: EventHandler {
    /// Who the daemon is (name, version, default paths), and the service kinds it runs.
    let identity: DaemonIdentity
    let kinds: [ServiceKind]

    var config: DaemonConfig {
        didSet { userIDs = Self.lookUp(config.user) }
    }
    /// The configured user's uid and gid, looked up when the configuration is loaded (not per
    /// control client: a user database behind the network could make every lookup wait).
    private(set) var userIDs: (uid: uid_t, gid: gid_t)?

    static func lookUp(_ user: String?) -> (uid: uid_t, gid: gid_t)? {
        guard let user, let pw = getpwnam(user) else { return nil }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }
    /// The configuration file reloads read; nil when running on the built-in defaults.
    let configPath: String?
    let log: Logger
    let page: StatsPage
    let sockets = ListenerSet()
    var engine: Engine!
    var loop: EventLoop { engine.eventLoop }

    var generation = 0 { didSet { page.summary.set(.generation, UInt64(generation)) } }
    var workerCount = 0 { didSet { page.summary.set(.workersConfigured, UInt64(workerCount)) } }
    /// Every live worker process, any generation.
    var workers: [WorkerSlot] = []
    var reload: PendingReload?
    var starting = true
    var stopping = false
    var stopReplies: [ConnID] = []
    /// The control clients connected now.
    var controlClients: [ConnID: ControlSession] = [:]
    /// When the supervisor started (monotonic ns; across a re-execution, the first image's start).
    let startedAt: Int64
    /// The file this supervisor was started from, as it was then: a reload re-executes the
    /// file when it has changed (`Supervisor+Reexec`).
    var binary: BinaryIdentity?
    /// How often this supervisor has re-executed itself into a new binary.
    var execCount = 0
    /// The file on disk as it was when it last failed the check (nil inside: missing): while it
    /// stays so, reloads only re-read the configuration instead of failing on it every time.
    var refusedBinary: BinaryIdentity?? = nil
    /// What the image before the exec handed over; nil after an ordinary start.
    let handoff: ReexecHandoff?
    /// The control socket's listening descriptor, and the socket file we bound for it.
    var controlFD: Int32 = -1
    var controlSocketFile: SocketFile?
    var reloadsOK = 0 { didSet { page.summary.set(.reloadsOK, UInt64(reloadsOK)) } }
    var reloadsFailed = 0 { didSet { page.summary.set(.reloadsFailed, UInt64(reloadsFailed)) } }
    var respawns = 0 { didSet { page.summary.set(.respawns, UInt64(respawns)) } }
    var lastError: String?
    /// The last unexpected exit of the worker at each index, for `gnetctl status`.
    var workerLastErrors: [Int: String] = [:]
    /// Counters of workers that have exited, folded in so totals never go backwards.
    var retired = RetiredTotals()
    /// Quick deaths in a row, per worker index, for the crash-loop back-off.
    var quickDeaths: [Int: Int] = [:]
    var respawnPending: Set<Int> = []

    struct RetiredTotals {
        var accepted: UInt64 = 0, rejected: UInt64 = 0, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, errors: UInt64 = 0
        /// Service counters by service name and counter name.
        var services: [String: [String: UInt64]] = [:]
        var datagramsIn: UInt64 = 0, datagramsOut: UInt64 = 0
        /// Each service's traffic, by service name.
        var serviceTraffic: [String: LoopCounters] = [:]
    }

    /// A reload waiting for its new generation to report ready.
    struct PendingReload {
        let generation: Int
        let config: DaemonConfig
        let workers: Int
        let added: [ListenerSet.Key: [Int32]]
        var replies: [ConnID]
        let started: Int64
    }

    /// A supervisor for `config`; with `handoff`, the one a re-executed image continues (the
    /// stats page, sockets and workers of the image before the exec are taken over in `run`).
    init(identity: DaemonIdentity, kinds: [ServiceKind], config: DaemonConfig, configPath: String?, logger: Logger,
         adopting handoff: ReexecHandoff? = nil) throws {
        self.identity = identity
        self.kinds = kinds
        self.config = config
        userIDs = Self.lookUp(config.user)
        self.configPath = configPath
        log = logger
        self.handoff = handoff
        if let handoff {
            page = try StatsPage.attach(fd: handoff.statsFD)
            startedAt = handoff.startedAt
        } else {
            page = try StatsPage.create(name: identity.name)
            startedAt = gnet_monotonic_ns()
        }
        binary = BinaryIdentity.ofThisProcess()
    }

    // MARK: running

    /// Binds everything, starts the workers and serves until stopped. Returns the exit code.
    func run() throws -> Int32 {
        var control: Listener
        if let handoff {
            control = try adoptSockets(handoff)
        } else {
            sockets.adoptedByService = Systemd.passedSockets()
            workerCount = config.resolvedWorkers
            // The control socket first: a second gnetd started on the same configuration stops here,
            // before it has touched a listen address the running one serves.
            control = try bindControlSocket(config.control)
            do {
                _ = try sockets.prepare(config, workers: workerCount)
            } catch {
                control.close()
                throw error
            }
            controlSocketFile = control.socketFile
        }
        controlFD = control.fd
        // The idle timeout is the control listener's own: worker status channels, enrolled in
        // the same loop, are silent for hours and must never be closed as idle clients. The
        // client cap is the supervisor's (`admitControlClient`), which knows who may get in.
        control.limits = ConnectionLimits(idleTimeout: .milliseconds(config.control.idleTimeout.milliseconds), maxConnections: 0)
        // Whatever happens from here on, no socket file of ours is left behind (and none that
        // another process has put in its place is taken away).
        defer {
            sockets.closeAll()
            controlSocketFile?.remove()
        }
        do {
            engine = try Engine(handler: self, listeners: [control], options: Options())
            try engine.handleSignals([SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGUSR1]) { [unowned self] sig in self.signal(sig) }
        } catch {
            engine = nil  // a loop that never ran closes its listeners
            throw error
        }
        try engine.run()
        return lastStartFailed ? 1 : 0
    }

    var lastStartFailed = false

    public func onBoot(_ engine: Engine) -> Action {
        if let ping = Systemd.watchdogPingInterval() { scheduleWatchdog(ping) }
        if let handoff {
            startWatchdog()
            resume(after: handoff)
            return .none
        }
        page.summary.set(.supervisorPID, UInt64(getpid()))
        page.summary.set(.startedUnixMs, gnet_realtime_ms())
        page.summary.set(.workersConfigured, UInt64(workerCount))
        generation = 1
        for i in 0..<workerCount { startWorker(index: i, generation: 1, config: config, count: workerCount) }
        whenNoWorkerGetsReady(of: 1) { [unowned self] in
            if self.starting && !self.stopping {
                self.fail("workers did not become ready: none for \(Self.readinessPatience)")
                self.lastStartFailed = true
                self.beginStop(force: true)
            }
        }
        startWatchdog()
        log.info("\(identity.name) \(identity.version) starting \(workerCount) workers (config: \(configPath ?? "built-in defaults"))")
        return .none
    }

    private func scheduleWatchdog(_ every: Duration) {
        loop.schedule(after: every) { [unowned self] in
            Systemd.notify("WATCHDOG=1")
            if !self.stopping { self.scheduleWatchdog(every) }
        }
    }

    private func bindControlSocket(_ c: ControlConfig) throws -> Listener {
        let path = c.socket
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let dir = String(path[..<slash])
            mkdir(dir, 0o755)
        }
        // Refuse to take the socket of a daemon that is running (a stale one is replaced).
        if SocketFile.isServed(path) {
            let holders = SocketHolders.pids(holding: NetworkAddress(unixPath: path))
            throw AddressInUse(address: "the control socket \(path)", holders: SocketHolders.describe(holders))
        }
        let listener = try Listener.bind(NetworkAddress(unixPath: path))
        chmod(path, mode_t(c.permissionBits ?? 0o660))
        if let owner = userIDs, getuid() == 0 {
            // Root and the daemon's group may talk to it.
            chown(path, 0, owner.gid)
        }
        return listener
    }

    // MARK: workers

    func startWorker(index: Int, generation: Int, config: DaemonConfig, count: Int) {
        // Before the worker exists: its metrics service may render the page at once.
        page.summary.publishCatalog(generation: generation, services: config.services.map { ($0.name, $0.kind) })
        guard let slot = page.claim() else {
            fail("no free stats slot for a worker")
            return
        }
        // The slot says "starting" before the worker exists: a worker that comes up fast writes
        // "serving" into it at once, and a store after the spawn would overwrite that for good.
        let s = page.slot(slot)
        gnet_counter_store(&s.pointee.generation, UInt64(generation))
        gnet_counter_store(&s.pointee.index, UInt64(index))
        gnet_counter_store(&s.pointee.started_unix_ms, gnet_realtime_ms())
        page.setState(slot, .starting)
        do {
            let (pid, channel) = try WorkerLauncher.spawn(name: identity.name, index: index, of: count, generation: generation, config: config,
                                                          sockets: sockets, page: page, statsSlot: slot)
            let w = WorkerSlot(index: index, generation: generation, pid: pid, statsSlot: slot)
            w.layout = SlotLayout(config, kinds: kinds)
            gnet_counter_store(&s.pointee.pid, UInt64(pid))
            workers.append(w)
            w.channel = try loop.enroll(fd: channel, context: w)
            log.debug("started worker \(index) of generation \(generation) as pid \(pid)")
        } catch {
            page.release(slot)
            fail("cannot start worker \(index): \(error)")
        }
    }

    func workerReported(_ w: WorkerSlot, _ line: String) {
        if line.hasPrefix("failed: ") { w.lastWords = String(line.dropFirst(8)) }
        if let stamp = BuildStamp(statusLine: line) { w.build = stamp }
        guard line == "ready", !w.ready else { return }
        w.ready = true
        if starting, w.generation == generation, currentGenerationReady {
            starting = false
            let ms = Double(gnet_monotonic_ns() - startedAt) / 1e6
            log.info("ready: \(workerCount) workers serving (generation \(generation), \(Int(ms)) ms after start)")
            Systemd.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=\(statusLine())")
        }
        if var r = reload, w.generation == r.generation, workers.filter({ $0.generation == r.generation && $0.ready }).count == r.workers {
            reload = nil
            finishReload(&r)
        }
    }

    /// How long a starting generation may go without one more of its workers reporting ready.
    /// Measured from the last one (not from the start), so a thousand workers that take
    /// seconds to spawn on a small machine are not mistaken for a failure.
    static let readinessPatience: Duration = .seconds(15)

    /// Calls `giveUp` once `generation` has gone `readinessPatience` without a worker becoming
    /// ready (checked every second; the caller's closure decides whether it still matters).
    func whenNoWorkerGetsReady(of generation: Int, readySoFar: Int = 0, since: Int64 = gnet_monotonic_ns(), _ giveUp: @escaping () -> Void) {
        loop.schedule(after: .seconds(1)) { [unowned self] in
            let ready = self.workers.filter { $0.generation == generation && $0.ready }.count
            let now = gnet_monotonic_ns()
            if ready != readySoFar {
                self.whenNoWorkerGetsReady(of: generation, readySoFar: ready, since: now, giveUp)
            } else if now - since >= Self.readinessPatience.nanoseconds {
                giveUp()
            } else {
                self.whenNoWorkerGetsReady(of: generation, readySoFar: ready, since: since, giveUp)
            }
        }
    }

    var currentGenerationReady: Bool {
        workers.filter { $0.generation == generation && $0.ready && !$0.retiring }.count >= workerCount
    }

    /// Reaps every exited child: folds its counters into the totals, frees its slot, and
    /// replaces it if it was not meant to exit.
    func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let i = workers.firstIndex(where: { $0.pid == pid }) else { continue }
            let w = workers.remove(at: i)
            let c = page.counters(w.statsSlot)
            retired.accepted &+= c.connectionsAccepted
            retired.rejected &+= c.connectionsRejected
            retired.bytesIn &+= c.bytesIn
            retired.bytesOut &+= c.bytesOut
            retired.errors &+= c.errors
            for s in serviceCounters(w) { for (name, v) in s.values { retired.services[s.service, default: [:]][name, default: 0] &+= v } }
            retired.datagramsIn &+= c.datagramsIn
            retired.datagramsOut &+= c.datagramsOut
            for (service, t) in serviceTraffic(w) {
                // Open connections of a worker that is gone are not open any more.
                var closed = t
                closed.connectionsOpen = 0
                if retired.serviceTraffic[service] == nil { retired.serviceTraffic[service] = closed } else { retired.serviceTraffic[service]?.add(closed) }
            }
            page.setState(w.statsSlot, .exited)
            page.release(w.statsSlot)
            if let channel = w.channel, let c = loop.conn(channel) {
                // Its last words may still be in the channel (the exit can be seen first).
                _ = onTraffic(c)
                var chunk = [UInt8](repeating: 0, count: 2048)
                let n = recv(c.fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
                if n > 0, let text = String(validating: chunk[0..<n], as: UTF8.self) {
                    for line in text.split(separator: "\n") { workerReported(w, String(line)) }
                }
                c.close()
            }
            var how = describeExit(status)
            if let words = w.lastWords { how += " (\(words))" }
            if w.stalled {
                log.info("stalled worker \(w.index) of generation \(w.generation) (pid \(pid)) \(how)")
            } else if w.retiring {
                log.debug("worker \(w.index) of generation \(w.generation) (pid \(pid)) \(how)")
            } else {
                workerDied(w, how: how)
            }
        }
    }

    private func workerDied(_ w: WorkerSlot, how: String) {
        if var r = reload, w.generation == r.generation {
            reload = nil
            failReload(&r, "worker \(w.index) of the new generation \(how) before it was ready")
            return
        }
        guard w.generation == generation, !stopping else { return }
        let quick = w.age < 2
        let deaths = quick ? (quickDeaths[w.index] ?? 0) + 1 : 0
        quickDeaths[w.index] = deaths
        let delay = deaths == 0 ? 0.0 : min(30.0, 0.1 * Double(1 << min(deaths - 1, 9)))
        let message = "worker \(w.index) (pid \(w.pid)) \(how) after \(w.age.oneDecimal)s; "
            + (delay > 0 ? "restarting in \(delay.oneDecimal)s (\(deaths) quick exits in a row)" : "restarting")
        fail(message)
        workerLastErrors[w.index] = message
        guard w.index < workerCount, !respawnPending.contains(w.index) else { return }
        respawnPending.insert(w.index)
        loop.schedule(after: .milliseconds(Int64(delay * 1000))) { [unowned self] in
            self.respawnPending.remove(w.index)
            guard !self.stopping, w.generation == self.generation,
                  !self.workers.contains(where: { $0.generation == self.generation && $0.index == w.index }) else { return }
            self.respawns += 1
            self.log.warning("respawning worker \(w.index) of generation \(self.generation) (respawn \(self.respawns))")
            self.startWorker(index: w.index, generation: self.generation, config: self.config, count: self.workerCount)
        }
    }

    private func describeExit(_ status: Int32) -> String {
        if status & 0x7f == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "was killed by signal \(status & 0x7f)"
    }

    func fail(_ message: String) {
        lastError = message
        log.error("\(message)")
    }

    func tell(_ w: WorkerSlot, _ line: String) {
        guard let id = w.channel, let c = loop.conn(id) else { return }
        do throws(GnetError) {
            try c.write(line + "\n")
        } catch {
            // The channel is gone or stuck: a worker that loses its channel drains by itself.
            log.error("cannot tell worker \(w.index) (pid \(w.pid)) to \(line): \(error); closing its channel")
            c.close()
        }
    }

    // MARK: reload

    /// Validates the configuration file, binds new addresses, starts a new generation; the old
    /// one drains once the new one is ready. `reply` (a control connection) gets the outcome.
    func beginReload(reply: ConnID?) {
        if stopping {
            respond(reply, ["ok": false, "error": "\(identity.name) is stopping"])
            return
        }
        if reload != nil {
            if let reply { reload?.replies.append(reply) }
            return
        }
        Systemd.notify("RELOADING=1\nSTATUS=reloading configuration")
        // A new binary on disk (a package upgrade): the new image performs the reload.
        if reexecIfBinaryChanged(reply: reply) { return }
        let newConfig: DaemonConfig
        do {
            newConfig = try configPath.map { path throws(ConfigError) in
                try ConfigLoader.load(path: path, kinds: kinds, defaultControlSocket: identity.controlSocket)
            } ?? config
            if newConfig.control != config.control {
                throw ConfigError(file: configPath ?? "<built-in>", line: nil, column: nil, path: "control",
                                  message: "the control settings cannot change on reload (restart gnetd)")
            }
        } catch {
            rejectReload(reply, "\(error)")
            return
        }
        let count = newConfig.resolvedWorkers
        let added: [ListenerSet.Key: [Int32]]
        do {
            added = try sockets.prepare(newConfig, workers: count)
        } catch {
            rejectReload(reply, "binding the new addresses: \(error)")
            return
        }
        let next = generation + 1
        reload = PendingReload(generation: next, config: newConfig, workers: count, added: added, replies: reply.map { [$0] } ?? [],
                               started: gnet_monotonic_ns())
        log.info("reloading: starting generation \(next) with \(count) workers")
        for i in 0..<count { startWorker(index: i, generation: next, config: newConfig, count: count) }
        whenNoWorkerGetsReady(of: next) { [unowned self] in
            if var r = self.reload, r.generation == next {
                self.reload = nil
                self.failReload(&r, "the new generation did not become ready: no worker for \(Self.readinessPatience)")
            }
        }
    }

    func rejectReload(_ reply: ConnID?, _ reason: String) {
        reloadsFailed += 1
        fail("reload failed: \(reason)")
        Systemd.notify("READY=1\nSTATUS=reload failed: \(reason.prefix(200)); \(statusLine())")
        respond(reply, ["ok": false, "error": "reload failed: \(reason)"])
    }

    private func failReload(_ r: inout PendingReload, _ reason: String) {
        for w in workers where w.generation == r.generation {
            w.retiring = true
            kill(w.pid, SIGKILL)
        }
        sockets.rollback(r.added)
        reloadsFailed += 1
        fail("reload failed: \(reason); generation \(generation) keeps serving")
        Systemd.notify("READY=1\nSTATUS=reload failed: \(reason.prefix(200)); \(statusLine())")
        for reply in r.replies { respond(reply, ["ok": false, "error": "reload failed: \(reason)"]) }
    }

    private func finishReload(_ r: inout PendingReload) {
        let old = generation
        generation = r.generation
        config = r.config
        workerCount = r.workers
        quickDeaths = [:]
        for w in workers where w.generation < generation && !w.retiring {
            w.retiring = true
            tell(w, "drain")
        }
        sockets.retainOnly(config)
        reloadsOK += 1
        let ms = Double(gnet_monotonic_ns() - r.started) / 1e6
        log.info("reloaded: generation \(generation) serving (\(Int(ms)) ms); generation \(old) draining")
        Systemd.notify("READY=1\nSTATUS=\(statusLine())")
        for reply in r.replies {
            respond(reply, ["ok": true, "generation": .init(generation), "workers": .init(workerCount), "reload_ms": .init(Int(ms))])
        }
    }

    // MARK: stopping

    /// Graceful stop: every worker drains (stops accepting, finishes its connections, exits by
    /// the drain timeout); the supervisor exits once they are gone. `force` kills them instead.
    func beginStop(force: Bool) {
        if stopping && !force { return }
        let first = !stopping
        stopping = true
        if let r = reload {
            var pending = r
            reload = nil
            failReload(&pending, "\(identity.name) is stopping")
        }
        if first { Systemd.notify("STOPPING=1\nSTATUS=stopping: draining \(workers.count) workers") }
        log.info(force ? "stopping now" : "stopping: draining \(workers.count) workers")
        for w in workers {
            w.retiring = true
            if force { kill(w.pid, SIGKILL) } else { tell(w, "drain") }
        }
        if first {
            let limit = Int64(config.drainTimeout.milliseconds) + 5000
            loop.schedule(after: .milliseconds(limit)) { [unowned self] in
                for w in self.workers { kill(w.pid, SIGKILL) }
            }
        }
        checkStopped()
    }

    func checkStopped() {
        guard stopping, workers.isEmpty else { return }
        for reply in stopReplies { respond(reply, ["ok": true]) }
        stopReplies = []
        engine.stop()
    }

    // MARK: signals

    func signal(_ sig: Int32) {
        switch sig {
        case SIGCHLD:
            reap()
            checkStopped()
        case SIGHUP:
            log.info("SIGHUP: reloading")
            beginReload(reply: nil)
        case SIGTERM, SIGINT, SIGQUIT:
            log.info("signal \(sig): \(stopping ? "second stop signal, forcing" : "stopping gracefully")")
            beginStop(force: stopping)
        case SIGUSR1:
            log.info("SIGUSR1: workers reopen their access logs (gnetd's own log is standard error)")
            for w in workers where !w.retiring { tell(w, "reopen") }
        default:
            break
        }
    }

    // MARK: connections

    public func onOpen(_ c: Conn) -> Action {
        if c.context is WorkerSlot { return .none }
        return admitControlClient(c)
    }

    public func onTraffic(_ c: Conn) -> Action {
        if let w = c.context as? WorkerSlot {
            let outcome = LineReader.forEachLine(c, limit: 4096) { line in
                workerReported(w, String(decoding: line, as: UTF8.self))
                return true
            }
            if outcome == .tooLong {
                log.warning("worker \(w.index) (pid \(w.pid)) sent a status line over 4096 bytes; ignored")
                c.discard()
            }
            return .none
        }
        guard let session = c.context as? ControlSession else { return .close }
        return handleControl(c, session)
    }

    public func onClose(_ c: Conn, error: GnetError?) -> Action {
        if let w = c.context as? WorkerSlot { w.channel = nil }
        controlClients.removeValue(forKey: c.id)
        return .none
    }

    func statusLine() -> String {
        let conns = workers.reduce(UInt64(0)) { $0 + page.counters($1.statsSlot).connectionsOpen }
        return "\(workers.filter { $0.generation == generation }.count) workers, generation \(generation), \(conns) connections"
    }
}

struct SupervisorError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
