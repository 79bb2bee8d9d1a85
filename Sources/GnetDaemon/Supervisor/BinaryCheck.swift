#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetProcess

/// Proves a new binary can run before the supervisor re-executes itself into it: runs
/// `BINARY --version`, which must name the same daemon, then `BINARY --check [--config FILE]`
/// (posix_spawn, a clean environment of ours, output captured) and waits for each, at most
/// `timeout`. A binary that is missing, not executable, another program, refuses the
/// configuration, crashes or hangs fails the check, with the reason. The supervisor's loop
/// waits meanwhile (milliseconds for a real binary), well inside the unit's watchdog interval.
enum BinaryCheck {
    /// How long each run may take.
    static let timeout: Duration = .seconds(10)

    /// nil when `binary` (named `name` in messages) is `daemonName` and accepts the
    /// configuration at `configPath` (nil: its built-in one); otherwise why not.
    static func failure(binary: String, shownAs name: String, daemonName: String, configPath: String?) -> String? {
        let (version, versionFailure) = run(binary, shownAs: name, ["--version"])
        if let versionFailure { return versionFailure }
        guard version.hasPrefix(daemonName + " ") else {
            return "\(name) --version says \"\(version.prefix(80))\", not \(daemonName)'s version: another program"
        }
        return run(binary, shownAs: name, ["--check"] + (configPath.map { ["--config", $0] } ?? [])).failure
    }

    /// Runs `binary arguments`: what it wrote (standard output and error), and nil or why it failed.
    private static func run(_ binary: String, shownAs name: String, _ arguments: [String]) -> (output: String, failure: String?) {
        let what = "\(name) \(arguments.first ?? "")"
        var errPipe: [Int32] = [0, 0]
        guard pipe(&errPipe) == 0 else { return ("", "cannot check \(name): \(SystemError("pipe", errno: errno))") }
        for fd in errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(errPipe[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let environment = ChildProcess.inheritedEnvironment().filter {
            !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("LISTEN_") && !$0.hasPrefix("WATCHDOG_")
                && !$0.hasPrefix(WorkerSpec.environmentKey + "=") && !$0.hasPrefix(ReexecHandoff.environmentKey + "=")
        }
        let pid: pid_t
        do {
            pid = try Spawn.process([name] + arguments, environment: environment, program: binary, actions: &actions)
        } catch {
            close(errPipe[1])
            return ("", "cannot run \(name): \(error)")
        }
        close(errPipe[1])
        let deadline = gnet_monotonic_ns() + timeout.nanoseconds
        let stderr = readUntilEOF(errPipe[0], deadline: deadline)
        var status: Int32 = 0
        while true {
            let r = (try? syscall(where: "waitpid") { waitpid(pid, &status, WNOHANG) }) ?? -1
            if r == pid { break }
            if r < 0 { return (stderr, "cannot wait for \(what)") }
            if gnet_monotonic_ns() >= deadline {
                kill(pid, SIGKILL)
                _ = try? syscall(where: "waitpid") { waitpid(pid, &status, 0) }
                return (stderr, "\(what) did not finish within \(timeout)")
            }
            usleep(5000)
        }
        if status & 0x7f == 0 && (status >> 8) & 0xff == 0 { return (stderr, nil) }
        let how = status & 0x7f == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
        let said = stderr.split(separator: "\n").prefix(3).joined(separator: "; ")
        return (stderr, "\(what) \(how)" + (said.isEmpty ? "" : ": \(said.prefix(600))"))
    }

    /// What the check writes to `fd` until it closes it or `deadline` passes (at most 64 KiB kept).
    private static func readUntilEOF(_ fd: Int32, deadline: Int64) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = (deadline - gnet_monotonic_ns()) / 1_000_000
            if left <= 0 { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard let ready = try? syscall(where: "poll", { poll(&pfd, 1, Int32(clamping: left)) }), ready > 0 else { continue }
            guard let n = try? syscall(where: "read", { read(fd, &chunk, chunk.count) }), n > 0 else { break }
            if bytes.count < 65536 { bytes += chunk[0..<n] }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
