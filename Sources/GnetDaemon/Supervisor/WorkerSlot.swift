#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetProcess

/// One worker process as the supervisor tracks it.
final class WorkerSlot {
    /// Position in its generation (0 ..< workers): decides which reuseport sockets it takes.
    let index: Int
    let generation: Int
    let pid: pid_t
    /// Its slot in the stats page.
    let statsSlot: Int
    /// Its status channel in the supervisor's loop.
    var channel: ConnID?
    /// Monotonic start time (ns).
    let started: Int64
    var ready = false
    /// Told to drain or stop: its exit is expected.
    var retiring = false
    /// The watchdog's view: the loop's iteration count when last looked at, and when it last
    /// moved (monotonic ns).
    var lastIterations: UInt64 = 0
    var progressAt: Int64 = 0
    /// Found making no progress and killed.
    var stalled = false
    /// Why it could not start, as it said on its channel before exiting.
    var lastWords: String?
    /// Where its services' figures are in its stats slot.
    var layout = SlotLayout([], kinds: [])
    /// The build it runs, as it said before "ready" (nil until then).
    var build: BuildStamp?

    /// A worker started `started` (monotonic ns; now, unless adopted after a re-execution).
    init(index: Int, generation: Int, pid: pid_t, statsSlot: Int, started: Int64 = gnet_monotonic_ns()) {
        self.index = index; self.generation = generation; self.pid = pid; self.statsSlot = statsSlot
        self.started = started
    }

    /// Seconds since it was started.
    var age: Double { Double(gnet_monotonic_ns() - started) / 1e9 }
}

/// Starts worker processes: `posix_spawn` of our own binary in worker mode (never Swift code
/// after a bare fork; the child's signal state is reset, since the supervisor blocks the
/// signals it reads from a signalfd), the listening sockets, the status channel and the stats page passed as
/// inherited descriptors, the rest of the description in `GNETD_WORKER`.
enum WorkerLauncher {
    static func spawn(name: String, index: Int, of count: Int, generation: Int, config: DaemonConfig, sockets: ListenerSet,
                      page: StatsPage, statsSlot: Int) throws(GnetError) -> (pid: pid_t, channel: Int32) {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .system(SystemError("socketpair", errno: errno))
        }
        // Inheritable copies of everything the worker gets, closed again right after the spawn.
        var inherited: [Int32] = []
        defer { for fd in inherited { close(fd) } }
        func pass(_ fd: Int32) throws(GnetError) -> Int32 {
            let copy = fcntl(fd, F_DUPFD, 3)
            guard copy >= 0 else { throw .system(SystemError("fcntl(F_DUPFD)", errno: errno)) }
            inherited.append(copy)
            return copy
        }
        do throws(GnetError) {
            var listeners: [WorkerSpec.ListenerSpec] = []
            for (s, service) in config.services.enumerated() {
                for key in try sockets.keys(for: service) {
                    let (fds, shared) = sockets.sockets(for: key, worker: index, of: count)
                    for fd in fds {
                        listeners.append(.init(fd: try pass(fd), service: s, address: key.address.description, shared: shared))
                    }
                }
            }
            let spec = WorkerSpec(index: index, generation: generation, slot: statsSlot, statusFD: try pass(pair[1]),
                                  statsFD: try pass(page.fd), drainTimeoutMs: config.drainTimeout.milliseconds,
                                  heartbeatMs: Watchdog.heartbeatMs(stallTimeoutMs: config.workerStallTimeout.milliseconds), user: config.user,
                                  logLevel: config.logLevel, listeners: listeners, configFile: config.sourceFile, configText: config.sourceText)
            var environment = ChildProcess.inheritedEnvironment().filter {
                !$0.hasPrefix("LISTEN_") && !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("WATCHDOG_") && !$0.hasPrefix(WorkerSpec.environmentKey + "=")
            }
            let specFD = try spec.memfd()
            defer { close(specFD) }
            environment.append("\(WorkerSpec.environmentKey)=\(try pass(specFD))")
            let pid: pid_t
            // Shown in `ps` as `gnetd: worker 0 (generation 3)`; the spec in the environment
            // is what makes it a worker.
            do {
                pid = try Spawn.process([WorkerProcess.title(name: name, index: index, generation: generation)],
                                        environment: environment, program: "/proc/self/exe")
            } catch { throw GnetError.system(error) }
            close(pair[1])
            return (pid, pair[0])
        } catch {
            close(pair[0]); close(pair[1])
            throw error
        }
    }
}
