#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A child process started with `posix_spawnp` (never `fork` followed by Swift code), with its
/// standard input and output on pipes, read line by line with deadlines.
///
/// The child starts with no blocked signals and default signal dispositions, whatever the
/// spawning thread had (test runners and signal-handling loops block signals, and a blocked
/// SIGTERM would be inherited). Whoever starts one stops it: `deinit` kills (SIGKILL) and
/// reaps a child that is still running.
public final class ChildProcess {
    /// The child's process id.
    public let pid: pid_t
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private var buffered: [UInt8] = []
    private var exitCode: Int32? = nil

    /// Starts `argv` (searched in `PATH`). `environment` nil inherits ours. The child's
    /// standard error goes to the file `stderrPath` (created or truncated) when given, to
    /// /dev/null with `discardStderr`, and is shared otherwise.
    public init(_ argv: [String], environment: [String]? = nil, discardStderr: Bool = false, stderrPath: String? = nil) throws(SystemError) {
        precondition(!argv.isEmpty, "ChildProcess needs a program")
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0 else { throw SystemError("pipe", errno: errno) }
        guard pipe(&outPipe) == 0 else {
            let e = errno
            close(inPipe[0]); close(inPipe[1])
            throw SystemError("pipe", errno: e)
        }
        for fd in inPipe + outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        if let stderrPath {
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        } else if discardStderr {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let spawned: pid_t
        do {
            spawned = try Spawn.process(argv, environment: environment ?? Self.inheritedEnvironment(), actions: &actions)
        } catch {
            close(inPipe[0]); close(outPipe[1]); close(inPipe[1]); close(outPipe[0])
            throw error
        }
        close(inPipe[0]); close(outPipe[1])
        pid = spawned
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
    }

    /// This process's environment, as `KEY=value` strings (to extend for a child).
    public static func inheritedEnvironment() -> [String] {
        var out: [String] = []
        var p = environ
        while let s = p.pointee { out.append(String(cString: s)); p += 1 }
        return out
    }

    deinit {
        if exitCode == nil {
            kill(pid, SIGKILL)
            _ = waitForExit()
        }
        close(stdinFD)
        close(stdoutFD)
    }

    /// The next line of standard output without its newline (the last one may lack it); nil at
    /// end of output or when nothing complete arrived within `timeout` seconds.
    public func readLine(timeout: Double) -> String? {
        let deadline = gnet_monotonic_ns() + Int64(timeout * 1e9)
        while true {
            if let nl = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<nl], as: UTF8.self)
                buffered.removeFirst(nl + 1)
                return line
            }
            let left = (deadline - gnet_monotonic_ns()) / 1_000_000
            if left <= 0 { return nil }
            var pfd = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(clamping: left))
            if r <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(stdoutFD, &chunk, chunk.count)
            if n <= 0 {
                // End of output: a last line without a newline still counts.
                guard !buffered.isEmpty else { return nil }
                let line = String(decoding: buffered, as: UTF8.self)
                buffered.removeAll()
                return line
            }
            buffered += chunk[0..<n]
        }
    }

    /// Every remaining line of standard output, until it closes or `timeout` passes between lines.
    public func readAll(timeout: Double) -> String {
        var lines: [String] = []
        while let l = readLine(timeout: timeout) { lines.append(l) }
        return lines.joined(separator: "\n")
    }

    /// Writes `line` and a newline to the child's standard input.
    public func writeLine(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { b in _ = write(stdinFD, b.baseAddress, b.count) }
    }

    /// Sends `signal` to the child.
    public func signal(_ sig: Int32) {
        if exitCode == nil { kill(pid, sig) }
    }

    /// Waits up to `timeout` seconds; returns the exit code (128 + signal number when killed
    /// by a signal), or nil if it is still running.
    public func wait(timeout: Double) -> Int32? {
        if let code = exitCode { return code }
        let deadline = gnet_monotonic_ns() + Int64(timeout * 1e9)
        repeat {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return record(status) }
            usleep(2000)
        } while gnet_monotonic_ns() < deadline
        return nil
    }

    /// SIGTERM, then SIGKILL if the child is still running after `grace` seconds; returns its
    /// exit code as `wait` does.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32 {
        signal(SIGTERM)
        if let code = wait(timeout: grace) { return code }
        kill(pid, SIGKILL)
        return waitForExit()
    }

    private func waitForExit() -> Int32 {
        if let code = exitCode { return code }
        var status: Int32 = 0
        _ = try? syscall(where: "waitpid") { waitpid(pid, &status, 0) }  // only ECHILD can fail: already reaped
        return record(status)
    }

    private func record(_ status: Int32) -> Int32 {
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        exitCode = code
        return code
    }
}

/// `posix_spawnp` with a clean signal state: the child starts with no blocked signals and
/// default dispositions, whatever the spawning thread had. Never Swift code between fork and
/// exec.
public enum Spawn {
    /// Starts `argv` (searched in `PATH` when it has no slash) with `environment`; with
    /// `program`, that file is run (no search) and `argv[0]` is only the name the child is
    /// shown under (`ps`).
    public static func process(_ argv: [String], environment: [String], program: String? = nil,
                               actions: UnsafePointer<posix_spawn_file_actions_t>? = nil) throws(SystemError) -> pid_t {
        precondition(!argv.isEmpty, "Spawn.process needs a program")
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = withCStrings(argv, environment) { cArgs, cEnv in
            program.map { posix_spawn(&pid, $0, actions, &attr, cArgs, cEnv) } ?? posix_spawnp(&pid, argv[0], actions, &attr, cArgs, cEnv)
        }
        guard rc == 0 else { throw SystemError(program == nil ? "posix_spawnp" : "posix_spawn", errno: rc) }
        return pid
    }

    /// Replaces this process with `program` (`execve`: the same pid and the descriptors not
    /// marked close-on-exec), shown as `argv[0]`; returns only if that failed, with why.
    public static func replacingThisProcess(with program: String, _ argv: [String], environment: [String]) -> SystemError {
        withCStrings(argv, environment) { cArgs, cEnv in
            execve(program, cArgs, cEnv)
            return SystemError("execve", errno: errno)
        }
    }

    /// `argv` and `environment` as the NULL-terminated C arrays exec and spawn take, for `body`.
    private static func withCStrings<R>(_ argv: [String], _ environment: [String],
                                        _ body: ([UnsafeMutablePointer<CChar>?], [UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        return body(cArgs, cEnv)
    }
}
