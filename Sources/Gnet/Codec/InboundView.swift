#if canImport(Glibc)
import Glibc
#endif

/// A read-only view of a connection's unconsumed inbound bytes, which may sit in up to three
/// pieces (the two segments of the connection's ring buffer and the loop's read buffer).
/// Decoders look through it without copying; offsets count from the oldest byte.
public struct InboundView {
    @usableFromInline let a: UnsafeRawBufferPointer
    @usableFromInline let b: UnsafeRawBufferPointer
    @usableFromInline let c: UnsafeRawBufferPointer

    /// A view over up to three pieces, oldest first. Empty pieces are allowed anywhere.
    public init(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                _ c: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        self.a = a; self.b = b; self.c = c
    }

    @inline(__always)
    func piece(_ i: Int) -> UnsafeRawBufferPointer { i == 0 ? a : (i == 1 ? b : c) }

    /// Number of bytes in view.
    @inlinable public var count: Int {
        @inline(__always) get { a.count &+ b.count &+ c.count }
    }

    /// The byte at `offset` (0 ≤ offset < count).
    @inlinable
    public subscript(offset: Int) -> UInt8 {
        if offset < a.count { return a[offset] }
        let o = offset - a.count
        if o < b.count { return b[o] }
        return c[o - b.count]
    }

    /// The first offset in `from..<min(to, count)` holding `byte`, found with memchr piece by piece.
    public func firstIndex(of byte: UInt8, from: Int = 0, to: Int = .max) -> Int? {
        let end = min(to, count)
        guard from < end else { return nil }
        var base = 0
        for i in 0..<3 {
            let piece = self.piece(i)
            defer { base += piece.count }
            let lo = max(from - base, 0), hi = min(end - base, piece.count)
            guard lo < hi, let p = piece.baseAddress else { continue }
            if let hit = memchr(p + lo, Int32(byte), hi - lo) {
                let distance = UnsafeRawPointer(hit) - p
                return base + distance
            }
        }
        return nil
    }

    /// An unsigned integer of `size` bytes (1…8) at `offset`, big- or little-endian.
    @inlinable @inline(__always)
    public func unsignedInteger(at offset: Int, size: Int, bigEndian: Bool) -> UInt64 {
        if offset + size <= a.count, let base = a.baseAddress {
            // Fast path: the field lies in the first piece; one unaligned load.
            switch size {
            case 1: return UInt64(base.load(fromByteOffset: offset, as: UInt8.self))
            case 2:
                let v = base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
                return UInt64(bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v))
            case 4:
                let v = base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                return UInt64(bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v))
            case 8:
                let v = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                return bigEndian ? UInt64(bigEndian: v) : UInt64(littleEndian: v)
            default: break
            }
        }
        var v: UInt64 = 0
        if bigEndian {
            for i in 0..<size { v = v << 8 | UInt64(self[offset + i]) }
        } else {
            for i in stride(from: size - 1, through: 0, by: -1) { v = v << 8 | UInt64(self[offset + i]) }
        }
        return v
    }

    /// Copies `count` bytes starting at `offset` into `destination`.
    public func copy(from offset: Int, count n: Int, to destination: UnsafeMutableRawPointer) {
        var done = 0, base = 0
        for i in 0..<3 {
            let piece = self.piece(i)
            defer { base += piece.count }
            guard done < n, let p = piece.baseAddress else { continue }
            let lo = max(offset + done - base, 0)
            guard lo < piece.count else { continue }
            let k = min(piece.count - lo, n - done)
            (destination + done).copyMemory(from: p + lo, byteCount: k)
            done += k
        }
    }
}
