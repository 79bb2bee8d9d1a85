#if canImport(Glibc)
import Glibc
#endif

/// Per-loop cache of byte storage in power-of-two size classes, so connections can take a
/// buffer when they need one and give it back when it empties without touching malloc on the
/// steady-state path. Not thread-safe: one pool per loop.
@usableFromInline
final class BufferPool {
    static let minShift = 10          // 1 KiB
    static let maxShift = 22          // 4 MiB: larger blocks go straight to malloc/free
    /// At most this many idle bytes are cached per size class.
    let bytesPerClass: Int
    @exclusivity(unchecked) private var free: [[UnsafeMutableRawPointer]]

    init(bytesPerClass: Int = 4 << 20) {
        self.bytesPerClass = bytesPerClass
        free = Array(repeating: [], count: Self.maxShift - Self.minShift + 1)
        for i in free.indices { free[i].reserveCapacity(max(1, min(256, bytesPerClass >> (Self.minShift + i)))) }
    }

    deinit {
        for list in free { for p in list { Glibc.free(p) } }
    }

    /// Rounds `n` up to the capacity a buffer of at least `n` bytes will have.
    @inline(__always)
    static func capacity(for n: Int) -> Int {
        let need = max(n, 1 << minShift)
        return 1 << (Int.bitWidth - (need - 1).leadingZeroBitCount)
    }

    /// Storage of exactly `capacity` bytes (a power of two from `capacity(for:)`).
    func take(capacity: Int) -> UnsafeMutableRawPointer {
        let shift = capacity.trailingZeroBitCount
        if shift <= Self.maxShift, let p = free[shift - Self.minShift].popLast() { return p }
        guard let p = malloc(capacity) else { fatalError("gnet: out of memory allocating \(capacity) bytes") }
        return p
    }

    /// Returns storage taken with `take(capacity:)`.
    func give(_ p: UnsafeMutableRawPointer, capacity: Int) {
        let shift = capacity.trailingZeroBitCount
        if shift <= Self.maxShift {
            let i = shift - Self.minShift
            if (free[i].count + 1) * capacity <= bytesPerClass {
                free[i].append(p)
                return
            }
        }
        Glibc.free(p)
    }
}
