#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// Facts about processes read from /proc and small files, without Foundation.
public enum ProcFS {
    /// The whole content of a (small) file as UTF-8 text; nil if it cannot be read.
    public static func readFile(_ path: String) -> String? {
        guard let bytes = try? readBytes(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes of a regular file; throws (naming the call and the errno) if it cannot be
    /// read, `EFBIG` past `limit` bytes, and `EINVAL` (from `fstat`) for anything but a regular
    /// file: a FIFO, device or socket given as a file is refused, never waited on (the open is
    /// non-blocking).
    public static func readBytes(_ path: String, limit: Int = 64 << 20) throws(SystemError) -> [UInt8] {
        let fd = try syscall(where: "open") { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        defer { close(fd) }
        var st = stat()
        _ = try syscall(where: "fstat") { fstat(fd, &st) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SystemError("fstat", errno: EINVAL) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try syscall(where: "read") { read(fd, &buf, buf.count) }
            if n == 0 { return out }
            out += buf[0..<n]
            if out.count > limit { throw SystemError("read", errno: EFBIG) }
        }
    }

    /// CPU time (user + system, ns) of every thread of `pid`, summed from
    /// `/proc/PID/task/*/schedstat`. 0 for a process that is gone.
    public static func cpuNanoseconds(_ pid: pid_t) -> Int64 {
        var total: Int64 = 0
        guard let dir = opendir("/proc/\(pid)/task") else { return 0 }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard name.first?.isNumber == true, let text = readFile("/proc/\(pid)/task/\(name)/schedstat"),
                  let ns = Int64(text.split(separator: " ").first ?? "") else { continue }
            total += ns
        }
        return total
    }

    /// The directory holding the running executable (its sibling binaries live there).
    public static func executableDirectory() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
