#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// The worker watchdog. Every worker's loop counts its turns in its stats slot (a relaxed store
/// it makes anyway) and, when idle, wakes at least every heartbeat so the count keeps moving. A
/// worker whose count has not moved for `worker_stall_timeout` is stuck: a handler spinning, a
/// blocking call, a SIGSTOP. The supervisor logs what it knows, marks it `stalled`, starts its
/// replacement at once (on the same listening sockets, so clients arriving now are served by
/// the new worker), and kills it: SIGABRT first, so a core dump or backtrace exists where they
/// are enabled (with SIGCONT, so a stopped worker receives it), SIGKILL if it is still there
/// two seconds later.
enum Watchdog {
    /// How often a worker's idle loop wakes: four beats per stall timeout, at most one a second.
    static func heartbeatMs(stallTimeoutMs: Int64) -> Int64 {
        stallTimeoutMs <= 0 ? 0 : min(1000, max(50, stallTimeoutMs / 4))
    }

    /// How often the supervisor looks: ten times per stall timeout, at most every 250 ms (and
    /// every 250 ms while the watchdog is off, so a reload can turn it on).
    static func checkInterval(stallTimeoutMs: Int64) -> Duration {
        .milliseconds(stallTimeoutMs <= 0 ? 250 : min(250, max(20, stallTimeoutMs / 10)))
    }
}

extension Supervisor {
    /// Runs the periodic check for the supervisor's life (it does nothing while
    /// `worker_stall_timeout` is 0).
    func startWatchdog() {
        loop.schedule(after: Watchdog.checkInterval(stallTimeoutMs: config.workerStallTimeout.milliseconds)) { [unowned self] in
            self.checkProgress()
            self.startWatchdog()
        }
    }

    /// Compares every ready worker's loop count with what it was; replaces the ones stuck for
    /// longer than the stall timeout.
    func checkProgress() {
        let timeoutNs = config.workerStallTimeout.milliseconds * 1_000_000
        guard timeoutNs > 0 else { return }
        let now = gnet_monotonic_ns()
        for w in workers where w.ready && !w.stalled {
            let iterations = gnet_counter_load(&page.slot(w.statsSlot).pointee.counters.loop_iterations)
            if iterations != w.lastIterations || w.progressAt == 0 {
                w.lastIterations = iterations
                w.progressAt = now
                continue
            }
            if now - w.progressAt >= timeoutNs { stalled(w, for: now - w.progressAt) }
        }
    }

    private func stalled(_ w: WorkerSlot, for nanos: Int64) {
        let state = page.state(w.statsSlot)
        let open = page.counters(w.statsSlot).connectionsOpen
        w.stalled = true
        let replaced = !w.retiring && !stopping && w.generation == generation
        w.retiring = true
        page.setState(w.statsSlot, .stalled)
        fail("worker \(w.index) (pid \(w.pid), generation \(w.generation), \(state.name), \(open) connections) made no progress for "
             + "\(nanos / 1_000_000) ms (worker_stall_timeout \(config.workerStallTimeout)): killed with SIGABRT"
             + (replaced ? ", replacement started" : ""))
        kill(w.pid, SIGABRT)
        kill(w.pid, SIGCONT)
        let pid = w.pid
        loop.schedule(after: .seconds(2)) { [unowned self] in
            if self.workers.contains(where: { $0.pid == pid }) { kill(pid, SIGKILL) }
        }
        if replaced {
            respawns += 1
            startWorker(index: w.index, generation: w.generation, config: config, count: workerCount)
        }
    }
}
