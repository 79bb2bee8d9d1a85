#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

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
    /// Bytes of a partial status line.
    var pending: [UInt8] = []

    init(index: Int, generation: Int, pid: pid_t, statsSlot: Int) {
        self.index = index; self.generation = generation; self.pid = pid; self.statsSlot = statsSlot
        started = gnet_monotonic_ns()
    }

    /// Seconds since it was started.
    var age: Double { Double(gnet_monotonic_ns() - started) / 1e9 }
}

/// Starts worker processes: `posix_spawn` of our own binary in worker mode (never Swift code
/// after a bare fork), the listening sockets, the status channel and the stats page passed as
/// inherited descriptors, the rest of the description in `GNETD_WORKER`.
enum WorkerLauncher {
    static func spawn(index: Int, of count: Int, generation: Int, config: DaemonConfig, sockets: ListenerSet,
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
                                  statsFD: try pass(page.fd), drainTimeoutMs: config.drainTimeout.milliseconds, user: config.user,
                                  logLevel: config.logLevel, listeners: listeners, services: config.services)
            var environment = ChildEnvironment.current().filter {
                !$0.hasPrefix("LISTEN_") && !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("WATCHDOG_") && !$0.hasPrefix(WorkerSpec.environmentKey + "=")
            }
            environment.append("\(WorkerSpec.environmentKey)=\(spec.encoded())")
            let pid = try ChildEnvironment.spawn(["/proc/self/exe", "--worker"], environment: environment)
            close(pair[1])
            return (pid, pair[0])
        } catch {
            close(pair[0]); close(pair[1])
            throw error
        }
    }
}

/// posix_spawn with a clean signal state (the supervisor blocks the signals it reads from a
/// signalfd; a child must not inherit that).
enum ChildEnvironment {
    static func current() -> [String] {
        var out: [String] = []
        var p = environ
        while let s = p.pointee { out.append(String(cString: s)); p += 1 }
        return out
    }

    static func spawn(_ argv: [String], environment: [String]) throws(GnetError) -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], nil, &attr, cArgs, cEnv)
        guard rc == 0 else { throw .system(SystemError("posix_spawn", errno: rc)) }
        return pid
    }
}
