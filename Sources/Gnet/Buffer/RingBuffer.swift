#if canImport(Glibc)
import Glibc
#endif

/// A byte FIFO over power-of-two storage borrowed from a `BufferPool`.
///
/// Growth follows gnet: ×2 below 4 KiB, ×1.25 above, rounded up to a power of two. Storage is
/// taken only when bytes are appended and handed back by `releaseIfEmpty`, so an idle
/// connection holds no buffer. It owns its storage: it cannot be copied (two owners of one
/// buffer), and whatever it still holds goes back to the pool when it is destroyed; `release`
/// empties it early (a connection slot is reused for the next connection).
@usableFromInline
struct RingBuffer: ~Copyable {
    @usableFromInline var storage: UnsafeMutableRawPointer? = nil
    /// Where storage comes from and returns to (the loop's pool, which outlives its buffers).
    @usableFromInline unowned(unsafe) var pool: BufferPool? = nil
    @usableFromInline var capacity = 0
    @usableFromInline var head = 0
    @usableFromInline var count = 0

    @inlinable var isEmpty: Bool { count == 0 }

    /// The buffered bytes as at most two contiguous pieces, oldest first.
    @inlinable
    func segments() -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        guard let s = storage, count > 0 else { return (UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0)) }
        let first = min(count, capacity - head)
        return (UnsafeRawBufferPointer(start: s + head, count: first),
                UnsafeRawBufferPointer(start: s, count: count - first))
    }

    deinit {
        if let s = storage, let pool { pool.give(s, capacity: capacity) }
    }

    /// Appends `bytes`, growing as needed.
    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: BufferPool) {
        let n = bytes.count
        guard n > 0, let src = bytes.baseAddress else { return }
        if count + n > capacity { grow(toHold: count + n, pool: pool) }
        guard let s = storage else { return }
        let tail = (head + count) & (capacity - 1)
        let first = min(n, capacity - tail)
        (s + tail).copyMemory(from: src, byteCount: first)
        if first < n { s.copyMemory(from: src + first, byteCount: n - first) }
        count += n
    }

    /// Copies the first `n` buffered bytes (n ≤ count) to `dst` without consuming them.
    func copy(_ n: Int, to dst: UnsafeMutableRawPointer) {
        guard let s = storage, n > 0 else { return }
        let first = min(n, capacity - head)
        dst.copyMemory(from: s + head, byteCount: first)
        if first < n { (dst + first).copyMemory(from: s, byteCount: n - first) }
    }

    /// Drops the first `n` bytes (n ≤ count). Storage stays until `releaseIfEmpty`.
    @inlinable
    mutating func consume(_ n: Int) {
        count -= n
        head = count == 0 ? 0 : (head + n) & (capacity - 1)
    }

    /// Gives the storage back to the pool when nothing is buffered.
    @inline(__always)
    mutating func releaseIfEmpty(pool: BufferPool) {
        if count == 0, storage != nil { release(pool: pool) }
    }

    /// Gives the storage back, dropping any buffered bytes.
    mutating func release(pool: BufferPool) {
        if let s = storage { pool.give(s, capacity: capacity) }
        storage = nil; capacity = 0; head = 0; count = 0
    }

    private mutating func grow(toHold need: Int, pool: BufferPool) {
        let stepped = capacity < 4096 ? capacity * 2 : capacity + capacity / 4
        let newCapacity = BufferPool.capacity(for: max(need, stepped))
        let p = pool.take(capacity: newCapacity)
        copy(count, to: p)
        if let s = storage { pool.give(s, capacity: capacity) }
        storage = p; capacity = newCapacity; head = 0
        self.pool = pool
    }
}
