#if canImport(Glibc)
import Glibc
#endif

/// An HTTP access log in Common Log Format, buffered in memory and written in blocks (when 32 KiB
/// have gathered, once a second, and at shutdown), so logging costs no syscall per request.
/// `reopen()` starts a new file at the same path (after logrotate moved the old one).
public final class AccessLog {
    public let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var second = -1
    private var stamp: [UInt8] = []

    /// Opens (creating, appending to) `path`; nil with errno set when it cannot.
    public init?(path: String) {
        self.path = path
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if fd < 0 { return nil }
        buffer.reserveCapacity(64 * 1024)
    }

    deinit {
        flush()
        close(fd)
    }

    private static let dashes = Array(" - - [".utf8)
    private static let openQuote = Array("] \"".utf8)
    private static let http10 = Array(" HTTP/1.0\" ".utf8)
    private static let http11 = Array(" HTTP/1.1\" ".utf8)

    /// Appends one line: `client - - [time] "METHOD target HTTP/1.x" status bytes` — no
    /// allocation once the buffer has grown.
    func record(client: [UInt8], method: String, target: String, minorVersion: Int, status: Int, bytes: Int) {
        buffer += client
        buffer += Self.dashes
        if Int(time(nil)) != second { refreshStamp() }
        buffer += stamp
        buffer += Self.openQuote
        var m = method, t = target
        m.withUTF8 { buffer += $0 }
        buffer.append(0x20)
        t.withUTF8 { u in for b in u { buffer.append(b == 0x22 ? 0x27 : b) } }  // no quotes inside the quoted request
        buffer += minorVersion == 0 ? Self.http10 : Self.http11
        appendNumber(status)
        buffer.append(0x20)
        appendNumber(bytes)
        buffer.append(0x0A)
        if buffer.count >= 32 * 1024 { flush() }
    }

    private func appendNumber(_ value: Int) {
        var v = max(0, value)
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[n] = UInt8(0x30 + v % 10); v /= 10; n += 1 } while v > 0
            for i in stride(from: n - 1, through: 0, by: -1) { buffer.append(d[i]) }
        }
    }

    /// Writes what is buffered.
    public func flush() {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // a full disk loses log lines, never requests
            off += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, then opens the path anew (log rotation).
    public func reopen() {
        flush()
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fresh >= 0 else { return }
        close(fd)
        fd = fresh
    }

    private func refreshStamp() {
        var now = time(nil)
        do {
            second = Int(now)
            var tm = tm()
            gmtime_r(&now, &tm)
            var buf = [CChar](repeating: 0, count: 64)
            let n = strftime(&buf, 64, "%d/%b/%Y:%H:%M:%S +0000", &tm)
            stamp = buf[0..<n].map { UInt8(bitPattern: $0) }
        }
    }
}
