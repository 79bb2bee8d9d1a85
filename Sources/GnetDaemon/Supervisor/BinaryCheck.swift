#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetProcess

/// Proves a new binary can run before the supervisor re-executes itself into it: runs
/// `BINARY --check [--config FILE]` (posix_spawn, a clean environment of ours, standard error
/// captured) and waits for it, at most `timeout`. A binary that is missing, not executable,
/// refuses the configuration, crashes or hangs fails the check, with the reason.
enum BinaryCheck {
    /// How long the check may take.
    static let timeout: Duration = .seconds(30)

    /// nil when `binary` accepts the configuration at `configPath` (nil: its built-in one);
    /// otherwise why not (the first lines of its standard error, or how it ended).
    static func failure(binary: String, configPath: String?) -> String? {
        var errPipe: [Int32] = [0, 0]
        guard pipe(&errPipe) == 0 else { return "cannot check \(binary): \(SystemError("pipe", errno: errno))" }
        for fd in errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(errPipe[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let environment = ChildProcess.inheritedEnvironment().filter {
            !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("LISTEN_") && !$0.hasPrefix("WATCHDOG_")
                && !$0.hasPrefix(WorkerSpec.environmentKey + "=") && !$0.hasPrefix(ReexecHandoff.environmentKey + "=")
        }
        let pid: pid_t
        do {
            pid = try Spawn.process([binary, "--check"] + (configPath.map { ["--config", $0] } ?? []), environment: environment,
                                    program: binary, actions: &actions)
        } catch {
            close(errPipe[1])
            return "cannot run \(binary): \(error)"
        }
        close(errPipe[1])
        let deadline = gnet_monotonic_ns() + timeout.nanoseconds
        let stderr = readUntilEOF(errPipe[0], deadline: deadline)
        var status: Int32 = 0
        while true {
            let r = (try? syscall(where: "waitpid") { waitpid(pid, &status, WNOHANG) }) ?? -1
            if r == pid { break }
            if r < 0 { return "cannot wait for \(binary) --check" }
            if gnet_monotonic_ns() >= deadline {
                kill(pid, SIGKILL)
                _ = try? syscall(where: "waitpid") { waitpid(pid, &status, 0) }
                return "\(binary) --check did not finish within \(timeout)"
            }
            usleep(5000)
        }
        if status & 0x7f == 0 && (status >> 8) & 0xff == 0 { return nil }
        let how = status & 0x7f == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
        let said = stderr.split(separator: "\n").prefix(3).joined(separator: "; ")
        return "\(binary) --check \(how)" + (said.isEmpty ? "" : ": \(said.prefix(600))")
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
