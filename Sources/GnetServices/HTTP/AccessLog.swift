#if canImport(Glibc)
import Glibc
#endif

/// An HTTP access log in Common Log Format, buffered in memory and written in blocks (when 32 KiB
/// have gathered, once a second, and at shutdown), so logging costs no syscall per request.
/// `reopen()` starts a new file at the same path (after logrotate moved the old one).
public final class AccessLog {
    public let path: String
    private var fd: Int32
    /// Lines gathered since the last write: `used` bytes at `storage` (never reallocated).
    private let storage: UnsafeMutableRawPointer
    private var used = 0
    private static let capacity = 64 * 1024
    private static let flushAt = 32 * 1024
    /// Longest request target logged (longer ones are cut): a line always fits.
    private static let maxTarget = 16 * 1024
    private var second = -1
    /// `[dd/Mon/yyyy:hh:mm:ss +0000] "` for `second`.
    private var stamp: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var stampCount = 0

    /// Opens (creating, appending to) `path`; nil with errno set when it cannot.
    public init?(path: String) {
        self.path = path
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        storage = .allocate(byteCount: Self.capacity, alignment: 16)
        if fd < 0 {
            storage.deallocate()
            return nil
        }
    }

    deinit {
        flush()
        close(fd)
        storage.deallocate()
    }

    /// Appends one line, `client - - [time] "METHOD target HTTP/1.x" status bytes`, taking
    /// the method and target from the request head `request` laid out by `layout` (`"- -"`
    /// without one). Copies into a fixed buffer: no allocation, no syscall.
    public func record(client: [UInt8], request: UnsafeRawBufferPointer, _ layout: HTTPHeadLayout?, status: Int, bytes: Int) {
        let now = time(nil)
        if now != second { refreshStamp(now) }
        var at = storage + used
        func put(_ source: UnsafeRawPointer?, _ count: Int) {
            if count > 0, let source { at.copyMemory(from: source, byteCount: count) }
            at += count
        }
        func put(_ s: StaticString) { put(s.utf8Start, s.utf8CodeUnitCount) }
        client.withUnsafeBytes { put($0.baseAddress, min($0.count, 64)) }
        put(" - - ")
        withUnsafeBytes(of: &stamp) { put($0.baseAddress, stampCount) }
        if let layout, let base = request.baseAddress {
            put(base + layout.method.lowerBound, min(layout.method.count, 32))
            put(" ")
            let target = at
            let length = min(layout.target.count, Self.maxTarget)
            put(base + layout.target.lowerBound, length)
            for i in 0..<length where target.load(fromByteOffset: i, as: UInt8.self) == 0x22 {
                target.storeBytes(of: 0x27, toByteOffset: i, as: UInt8.self)  // no quotes inside the quoted request
            }
            put(layout.minorVersion == 0 ? " HTTP/1.0\" " : " HTTP/1.1\" ")
        } else {
            put("- -\" ")
        }
        at = Self.putNumber(status, at)
        put(" ")
        at = Self.putNumber(bytes, at)
        put("\n")
        used = at - storage
        if used >= Self.flushAt { flush() }
    }

    private static func putNumber(_ value: Int, _ at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var v = UInt(max(0, value))
        var digits = 1
        var rest = v / 10
        while rest > 0 { digits += 1; rest /= 10 }
        for i in stride(from: digits - 1, through: 0, by: -1) {
            at.storeBytes(of: UInt8(0x30 + v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
        }
        return at + digits
    }

    /// Writes what is buffered.
    public func flush() {
        var off = 0
        while off < used {
            let n = write(fd, storage + off, used - off)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // a full disk loses log lines, never requests
            off += n
        }
        used = 0
    }

    /// Flushes, then opens the path anew (log rotation).
    public func reopen() {
        flush()
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fresh >= 0 else { return }
        close(fd)
        fd = fresh
    }

    private func refreshStamp(_ now: time_t) {
        second = now
        var t = now
        var tm = tm()
        gmtime_r(&t, &tm)
        stampCount = withUnsafeMutableBytes(of: &stamp) { b in
            strftime(b.baseAddress!.assumingMemoryBound(to: CChar.self), b.count, "[%d/%b/%Y:%H:%M:%S +0000] \"", &tm)
        }
    }
}
