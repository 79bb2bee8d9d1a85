#if canImport(Glibc)
import Glibc
#endif
import Gnet
import Testing

/// A real child process with piped stdin/stdout, read line by line with deadlines. The test
/// that starts one stops it: `deinit` kills (SIGKILL) and reaps it by PID if still running.
final class ChildProcess {
    let pid: pid_t
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private var buffered: [UInt8] = []
    private var exited: Int32? = nil

    init(_ argv: [String], environment: [String]? = nil) throws {
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0 else { throw SystemError("pipe", errno: errno) }
        for fd in inPipe + outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let env = environment ?? Self.currentEnvironment()
        let cEnv = env.map { strdup($0) } + [nil]
        defer { cEnv.forEach { free($0) } }
        // The child starts with no blocked signals and default dispositions, whatever the
        // spawning thread had (test runner threads block most signals).
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var p: pid_t = 0
        let rc = posix_spawnp(&p, argv[0], &actions, &attr, cArgs, cEnv)
        close(inPipe[0]); close(outPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0])
            throw SystemError("posix_spawnp", errno: rc)
        }
        pid = p
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
    }

    deinit {
        if exited == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(stdinFD)
        close(stdoutFD)
    }

    static func currentEnvironment() -> [String] {
        var out: [String] = []
        var p = environ
        while let s = p.pointee { out.append(String(cString: s)); p += 1 }
        return out
    }

    /// The next line of stdout (without the newline), or nil at EOF or after `timeout` seconds.
    func readLine(timeout: Double = 30) -> String? {
        let deadline = gnetNow() + timeout
        while true {
            if let nl = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<nl], as: UTF8.self)
                buffered.removeFirst(nl + 1)
                return line
            }
            let left = deadline - gnetNow()
            if left <= 0 { return nil }
            var pfd = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(left * 1000) + 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(stdoutFD, &chunk, 4096)
            if n <= 0 { return nil }
            buffered += chunk[0..<n]
        }
    }

    func writeLine(_ s: String) {
        let line = s + "\n"
        _ = line.withCString { write(stdinFD, $0, strlen($0)) }
    }

    /// Waits up to `timeout` seconds for exit; returns the exit status (128+signal if killed).
    func wait(timeout: Double = 30) -> Int32? {
        if let e = exited { return e }
        let deadline = gnetNow() + timeout
        while gnetNow() < deadline {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                exited = code
                return code
            }
            usleep(5000)
        }
        return nil
    }

    /// Sends `signal` to the child.
    func signal(_ sig: Int32) { kill(pid, sig) }
}
