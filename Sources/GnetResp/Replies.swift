/// The replies to the commands of one read, gathered and written with one write: RESP2 simple
/// strings, errors, integers, bulk strings and array headers, encoded into memory the buffer
/// keeps between reads (so replying allocates nothing once it has grown). It owns that memory
/// (no copies) and frees it when destroyed.
struct Replies: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 64 * 1024) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    var isEmpty: Bool { count == 0 }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    mutating func removeAll() { count = 0 }
    deinit { base.deallocate() }

    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if count + n > capacity {
            var c = capacity * 2
            while c < count + n { c *= 2 }
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
            fresh.copyMemory(from: base, byteCount: count)
            base.deallocate()
            base = fresh
            capacity = c
        }
        return base + count
    }

    @inline(__always)
    mutating func raw(_ p: UnsafeRawPointer, _ n: Int) {
        guard n > 0 else { return }
        reserve(n).copyMemory(from: p, byteCount: n)
        count += n
    }

    mutating func raw(_ s: StaticString) { raw(s.utf8Start, s.utf8CodeUnitCount) }

    mutating func raw(_ s: String) {
        var s = s
        s.withUTF8 { if let p = $0.baseAddress { raw(p, $0.count) } }
    }

    /// `+OK\r\n` and friends.
    @inline(__always)
    mutating func simple(_ s: StaticString) { raw(s) }

    /// `-ERR …\r\n` (the text must not hold CR or LF).
    mutating func error(_ text: String) {
        raw("-")
        raw(text)
        raw("\r\n")
    }

    /// `:n\r\n`.
    mutating func integer(_ n: Int64) {
        let p = reserve(24)
        p.storeBytes(of: UInt8(ascii: ":"), as: UInt8.self)
        let digits = Self.decimal(n, into: p + 1)
        (p + 1 + digits).storeBytes(of: 0x0A0D, as: UInt16.self)  // "\r\n"
        count += 1 + digits + 2
    }

    /// `$n\r\n…\r\n`.
    @inline(__always)
    mutating func bulk(_ bytes: UnsafeRawPointer?, _ n: Int) {
        let p = reserve(n + 26)
        p.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        let digits = Self.decimal(Int64(n), into: p + 1)
        (p + 1 + digits).storeBytes(of: 0x0A0D, as: UInt16.self)
        if n > 0, let bytes { (p + 3 + digits).copyMemory(from: bytes, byteCount: n) }
        (p + 3 + digits + n).storeBytes(of: 0x0A0D, as: UInt16.self)
        count += 3 + digits + n + 2
    }

    /// `$-1\r\n`: the null bulk string.
    @inline(__always)
    mutating func null() { raw("$-1\r\n") }

    /// `*n\r\n`, the header of an array of n replies that follow.
    mutating func array(_ n: Int) {
        let p = reserve(24)
        p.storeBytes(of: UInt8(ascii: "*"), as: UInt8.self)
        let digits = Self.decimal(Int64(n), into: p + 1)
        (p + 1 + digits).storeBytes(of: 0x0A0D, as: UInt16.self)
        count += 1 + digits + 2
    }

    /// Writes `n` in decimal at `p`; returns the number of bytes.
    @inline(__always)
    static func decimal(_ n: Int64, into p: UnsafeMutableRawPointer) -> Int {
        if n >= 0 && n < 10 {
            p.storeBytes(of: UInt8(0x30 + n), as: UInt8.self)
            return 1
        }
        var v = n.magnitude
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &tmp) { t -> Int in
            guard let digitsBase = t.baseAddress else { return 0 }
            var i = 24
            while v > 0 {
                i -= 1
                t[i] = UInt8(0x30 + v % 10)
                v /= 10
            }
            var at = 0
            if n < 0 {
                p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
                at = 1
            }
            let digits = 24 - i
            (p + at).copyMemory(from: digitsBase + i, byteCount: digits)
            return at + digits
        }
    }
}
