#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// A child started with posix_spawnp, its stdout (and optionally stderr) on a pipe.
final class Subprocess {
    let pid: pid_t
    let stdoutFD: Int32
    private var pending: [UInt8] = []
    private(set) var status: Int32? = nil

    init?(_ argv: [String], stderrToStdout: Bool = false, quietStderr: Bool = false) {
        var out: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { return nil }
        _ = fcntl(out[0], F_SETFD, FD_CLOEXEC)
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_adddup2(&fa, out[1], 1)
        if stderrToStdout { posix_spawn_file_actions_adddup2(&fa, out[1], 2) }
        if quietStderr { posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) }
        posix_spawn_file_actions_addclose(&fa, out[1])
        let args = argv.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        // The child starts with no blocked signals and default dispositions, whatever ours are.
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
        let rc = posix_spawnp(&p, argv[0], &fa, &attr, args, environ)
        close(out[1])
        guard rc == 0 else { close(out[0]); return nil }
        pid = p
        stdoutFD = out[0]
    }

    deinit {
        if status == nil { kill(pid, SIGKILL); _ = wait() }
        close(stdoutFD)
    }

    /// Next stdout line, nil at EOF or after `timeout` seconds.
    func readLine(timeout: Double) -> String? {
        let deadline = gnet_monotonic_ns() + Int64(timeout * 1e9)
        while true {
            if let nl = pending.firstIndex(of: 10) {
                let s = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeFirst(nl + 1)
                return s
            }
            let left = (deadline - gnet_monotonic_ns()) / 1_000_000
            if left <= 0 { return nil }
            var pfd = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32(left)) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(stdoutFD, &chunk, 4096)
            if n <= 0 { return nil }
            pending += chunk[0..<n]
        }
    }

    /// Reads stdout until EOF.
    func readAll(timeout: Double) -> String {
        var lines: [String] = []
        while let l = readLine(timeout: timeout) { lines.append(l) }
        return lines.joined(separator: "\n")
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace` seconds; reaps it.
    @discardableResult
    func stop(grace: Double = 10) -> Int32 {
        kill(pid, SIGTERM)
        let deadline = gnet_monotonic_ns() + Int64(grace * 1e9)
        while gnet_monotonic_ns() < deadline {
            var st: Int32 = 0
            if waitpid(pid, &st, WNOHANG) == pid { status = st; return st }
            usleep(5000)
        }
        kill(pid, SIGKILL)
        return wait()
    }

    @discardableResult
    func wait() -> Int32 {
        if let s = status { return s }
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        status = st
        return st
    }

    /// CPU time (user + system, ns) of every thread of the process, from schedstat.
    func cpuNanoseconds() -> Int64 { processCPUNanoseconds(pid) }
}

func processCPUNanoseconds(_ pid: pid_t) -> Int64 {
    var total: Int64 = 0
    guard let dir = opendir("/proc/\(pid)/task") else { return 0 }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        guard name.first?.isNumber == true else { continue }
        if let text = readSmallFile("/proc/\(pid)/task/\(name)/schedstat"),
           let first = text.split(separator: " ").first, let ns = Int64(first) {
            total += ns
        }
    }
    return total
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// The directory holding this executable (its sibling binaries live there too).
func executableDirectory() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { return "." }
    let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return String(path[..<slash])
}

/// Writes `text` to standard error with one write(2).
func printError(_ text: String) {
    var t = text
    t.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
