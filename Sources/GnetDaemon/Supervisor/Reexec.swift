#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetProcess

/// A reload after a package upgrade runs the new binary: when the file the supervisor was
/// started from has changed on disk, the supervisor checks the new file can run the
/// configuration, then re-executes it in place (`execve`, same pid: systemd's MainPID, the
/// watchdog and NotifyAccess=main keep working), handing over its sockets, stats page, workers
/// and counters (`ReexecHandoff`). The new image adopts them and performs the reload: the new
/// generation starts from the new binary, the old one drains. An unchanged file reloads as
/// always, without an exec.
extension Supervisor {
    /// Re-executes the binary on disk if it has changed; true when it has (the reload then
    /// failed — a reason answered — since a successful exec does not return), false when the
    /// reload goes on as usual.
    func reexecIfBinaryChanged(reply: ConnID?) -> Bool {
        guard let binary, binary.hasChangedOnDisk else { return false }
        let onDisk = BinaryIdentity(path: binary.path)
        if let refused = refusedBinary, refused == onDisk {
            // Refused before and unchanged since: the configuration is reloaded as if the
            // binary had not changed, rather than every reload failing on the same file.
            log.warning("reload: \(binary.path) still is the file that failed its check; reloading the configuration with the running binary")
            return false
        }
        log.info("reload: \(binary.path) has changed on disk; checking that it can run the configuration")
        // The file is opened once: what is checked is what is executed, whatever is renamed
        // over the path meanwhile.
        let file: Int32
        do { file = try syscall(where: "open") { open(binary.path, O_PATH | O_CLOEXEC) } } catch {
            refusedBinary = .some(onDisk)
            rejectReload(reply, "the new binary cannot run: cannot open \(binary.path): \(error); \(identity.name) goes on with the running one")
            return true
        }
        defer { close(file) }
        let checked = "/proc/\(getpid())/fd/\(file)"
        if let failure = BinaryCheck.failure(binary: checked, shownAs: binary.path, daemonName: identity.name, configPath: configPath) {
            refusedBinary = .some(onDisk)
            rejectReload(reply, "the new binary cannot run: \(failure); \(identity.name) goes on with the running one")
            return true
        }
        let failure = reexec(checked, shownAs: binary.path, reply: reply)
        rejectReload(reply, "cannot re-execute \(binary.path): \(failure); \(identity.name) goes on with the running one")
        return true
    }

    /// Everything the new image takes over.
    func handoffDescription(reply: ConnID?) -> ReexecHandoff {
        var h = ReexecHandoff()
        (h.listeners, h.passedSockets) = sockets.handoff()
        h.controlFD = controlFD
        h.controlSocketFile = controlSocketFile?.path
        h.statsFD = page.fd
        h.workers = workers.map { w in
            ReexecHandoff.Worker(pid: w.pid, index: w.index, generation: w.generation, statsSlot: w.statsSlot,
                                 channelFD: w.channel.flatMap { loop.conn($0)?.fd }, ready: w.ready, retiring: w.retiring, started: w.started,
                                 services: w.layout.entries.map { ($0.service, $0.kind) }, build: w.build)
        }
        h.generation = generation
        h.workerCount = workerCount
        h.reloadsOK = reloadsOK; h.reloadsFailed = reloadsFailed; h.respawns = respawns
        h.quickDeaths = quickDeaths
        h.workerLastErrors = workerLastErrors
        h.lastError = lastError
        h.retired = retired
        h.configPath = configPath
        h.configFile = config.sourceFile
        h.configText = config.sourceText
        h.startedAt = startedAt
        h.execCount = execCount + 1
        h.replyFD = reply.flatMap { loop.conn($0)?.fd }
        return h
    }

    /// `execve(path)` with the handoff; returns only when that failed, with why. The handed
    /// descriptors lose close-on-exec just before, and get it back if the exec fails.
    private func reexec(_ path: String, shownAs name: String, reply: ConnID?) -> String {
        let handoff = handoffDescription(reply: reply)
        let memfd: Int32
        do throws(GnetError) { memfd = try JSONMemfd.create(name: "\(identity.name)-reexec", handoff.json) } catch { return "\(error)" }
        defer { close(memfd) }
        var restore: [(fd: Int32, flags: Int32)] = []
        defer { for r in restore { _ = fcntl(r.fd, F_SETFD, r.flags) } }
        for fd in handoff.descriptors + [memfd] {
            let flags = fcntl(fd, F_GETFD)
            guard flags >= 0, fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0 else { return "\(SystemError("fcntl(F_SETFD)", errno: errno)) on descriptor \(fd)" }
            restore.append((fd, flags))
        }
        let arguments = [name] + CommandLine.arguments.dropFirst()
        let environment = ChildProcess.inheritedEnvironment().filter { !$0.hasPrefix(ReexecHandoff.environmentKey + "=") }
            + ["\(ReexecHandoff.environmentKey)=\(memfd)"]
        log.info("re-executing \(name) (exec \(handoff.execCount)): handing over \(workers.count) workers of generation \(generation)")
        return "\(Spawn.replacingThisProcess(with: path, arguments, environment: environment))"
    }

    /// Takes over the listening sockets and the control socket of the image before the exec;
    /// returns the control listener.
    func adoptSockets(_ h: ReexecHandoff) throws -> Listener {
        for fd in h.descriptors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // workers get copies, never these
        try sockets.adopt(h.listeners, passed: h.passedSockets)
        controlSocketFile = h.controlSocketFile.flatMap { SocketFile(boundAt: $0) }
        return try Listener.adopt(fd: h.controlFD, address: NetworkAddress(unixPath: config.control.socket))
    }

    /// Continues the image before the exec: its counters, its workers (still our children,
    /// tracked by pid, their channels in this loop) as the current generation, then the
    /// reload it was asked for, with the new binary's workers.
    func resume(after h: ReexecHandoff) {
        starting = false
        execCount = h.execCount
        generation = h.generation
        workerCount = h.workerCount
        reloadsOK = h.reloadsOK; reloadsFailed = h.reloadsFailed; respawns = h.respawns
        quickDeaths = h.quickDeaths
        workerLastErrors = h.workerLastErrors
        lastError = h.lastError
        retired = h.retired
        for a in h.workers {
            let w = WorkerSlot(index: a.index, generation: a.generation, pid: a.pid, statsSlot: a.statsSlot, started: a.started)
            w.ready = a.ready
            w.retiring = a.retiring
            w.build = a.build
            w.layout = SlotLayout(a.services, kinds: kinds)
            workers.append(w)
            if let fd = a.channelFD {
                do throws(GnetError) { w.channel = try loop.enroll(fd: fd, context: w) } catch {
                    log.error("cannot watch the status channel of worker \(a.index) (pid \(a.pid)): \(error)")
                }
            }
        }
        var reply: ConnID? = nil
        if let fd = h.replyFD {
            do throws(GnetError) { reply = try loop.enroll(fd: fd) } catch { log.warning("cannot answer the reload's client: \(error)") }
        }
        let build = BuildStamp.current(identity)
        log.info("re-executed \(binary?.path ?? "?") (\(identity.version), build \(build.buildID.prefix(12))), exec \(execCount): adopted \(workers.count) workers of generation \(generation); reloading")
        reap()  // a worker that exited during the exec
        beginReload(reply: reply)
    }
}
