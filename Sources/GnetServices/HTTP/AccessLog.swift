#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// An HTTP access log in Common Log Format, buffered in memory and written in blocks (when 32 KiB
/// have gathered, once a second, and at shutdown), so logging costs no syscall per request.
/// `reopen()` starts a new file at the same path (after logrotate moved the old one).
public final class AccessLog {
    /// The file lines are appended to (reopened at this path by `reopen()`).
    public let path: String
    /// Lines gathered since the last write (never reallocated).
    private let storage: UnsafeMutableRawPointer
    private static let capacity = 64 * 1024
    private static let flushAt = 32 * 1024
    /// Longest request target logged (longer ones are cut): a line always fits.
    private static let maxTarget = 16 * 1024
    /// What changes per line. Used on one loop thread; kept behind a pointer so each line pays
    /// no dynamic exclusivity checks.
    private struct State {
        var fd: Int32
        var used = 0
        var second = -1
        /// ` - - [dd/Mon/yyyy:hh:mm:ss +0000] "` for `second`.
        var stamp: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        var stampCount = 0
    }
    private let state: UnsafeMutablePointer<State>

    /// Opens (creating, appending to) `path`; nil with errno set when it cannot, and with
    /// EINVAL when the path names something other than a regular file (a FIFO would block
    /// the loop at the first write, a device could do anything).
    public init?(path: String) {
        self.path = path
        guard let fd = Self.openLog(path) else { return nil }
        storage = .allocate(byteCount: Self.capacity, alignment: 16)
        state = .allocate(capacity: 1)
        state.initialize(to: State(fd: fd))
    }

    deinit {
        flush()
        close(state.pointee.fd)
        state.deinitialize(count: 1)
        state.deallocate()
        storage.deallocate()
    }

    /// Appends one line, `client - - [time] "METHOD target HTTP/1.x" status bytes`, taking
    /// the method and target from the request head `request` laid out by `layout` (`"- -"`
    /// without one). Copies into a fixed buffer: no allocation, no syscall.
    public func record(client: [UInt8], request: UnsafeRawBufferPointer, _ layout: HTTPHeadLayout?, status: Int, bytes: Int) {
        let now = time(nil)
        if now != state.pointee.second { refreshStamp(now) }
        var at = storage + state.pointee.used
        client.withUnsafeBytes { if let p = $0.baseAddress { at.copyMemory(from: p, byteCount: min($0.count, 64)); at += min($0.count, 64) } }
        withUnsafeBytes(of: &state.pointee.stamp) { at.copyMemory(from: $0.baseAddress!, byteCount: state.pointee.stampCount) }
        at += state.pointee.stampCount
        if let layout, let base = request.baseAddress {
            // The request line as received (it was validated: method, target, "HTTP/1.x"), in
            // one copy; a target longer than maxTarget is cut before its version is added back.
            let length = min(layout.target.upperBound - layout.method.lowerBound, Self.maxTarget)
            at.copyMemory(from: base + layout.method.lowerBound, byteCount: length)
            var from = at + (layout.target.lowerBound - layout.method.lowerBound)
            let end = at + length
            while from < end, let quote = memchr(from, 0x22, end - from) {
                quote.storeBytes(of: 0x27, as: UInt8.self)  // no quotes inside the quoted request
                from = quote + 1
            }
            at = end
            let version: StaticString = layout.minorVersion == 0 ? " HTTP/1.0\" " : " HTTP/1.1\" "
            at.copyMemory(from: version.utf8Start, byteCount: version.utf8CodeUnitCount)
            at += version.utf8CodeUnitCount
        } else {
            for b in "- -\" ".utf8 { at.storeBytes(of: b, as: UInt8.self); at += 1 }
        }
        at = Self.putNumber(status, at)
        at.storeBytes(of: 0x20, as: UInt8.self)
        at = Self.putNumber(bytes, at + 1)
        at.storeBytes(of: 0x0A, as: UInt8.self)
        state.pointee.used = at + 1 - storage
        if state.pointee.used >= Self.flushAt { flush() }
    }

    /// Writes `value` in decimal at `at`; returns the byte after it.
    private static func putNumber(_ value: Int, _ at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var v = UInt(max(0, value))
        if v < 1000 {  // statuses and small bodies: no loop
            let digits = v < 10 ? 1 : (v < 100 ? 2 : 3)
            if digits == 3 { at.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v / 100), as: UInt8.self) }
            if digits >= 2 { at.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v / 10 % 10), toByteOffset: digits - 2, as: UInt8.self) }
            at.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v % 10), toByteOffset: digits - 1, as: UInt8.self)
            return at + digits
        }
        var digits = 1
        var limit: UInt = 10
        while v >= limit && digits < 19 { digits += 1; limit &*= 10 }
        var i = digits
        while i > 0 {
            i -= 1
            at.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
        }
        return at + digits
    }

    /// A log file opened for appending: created if absent, refused unless it is a regular file.
    private static func openLog(_ path: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0o640)
        if fd < 0 { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            errno = EINVAL
            return nil
        }
        return fd
    }

    /// Writes what is buffered. A write that fails (a full disk) loses log lines, never
    /// requests.
    public func flush() {
        var off = 0
        let used = state.pointee.used
        defer { state.pointee.used = 0 }
        while off < used {
            let fd = state.pointee.fd
            guard let n = try? syscall(where: "write", { write(fd, storage + off, used - off) }), n > 0 else { return }
            off += n
        }
    }

    /// Flushes, then opens the path anew (log rotation). When the path cannot be opened, lines
    /// go on to the file already open and the reason is returned (errno's message).
    @discardableResult
    public func reopen() -> String? {
        flush()
        guard let fresh = Self.openLog(path) else { return String(cString: strerror(errno)) }
        close(state.pointee.fd)
        state.pointee.fd = fresh
        return nil
    }

    private func refreshStamp(_ now: time_t) {
        state.pointee.second = now
        var t = now
        var tm = tm()
        gmtime_r(&t, &tm)
        state.pointee.stampCount = withUnsafeMutableBytes(of: &state.pointee.stamp) { b in
            strftime(b.baseAddress!.assumingMemoryBound(to: CChar.self), b.count, " - - [%d/%b/%Y:%H:%M:%S +0000] \"", &tm)
        }
    }
}
