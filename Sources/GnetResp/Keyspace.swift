#if canImport(Glibc)
import Glibc
#endif

/// One worker's keys and values: an open-addressing hash table (linear probing, backward-shift
/// deletion, at most half full) over memory it owns. A lookup hashes the key bytes where they
/// lie in the request and compares them in place, so a GET allocates nothing; a SET allocates
/// the key once and the value only when it outgrows the space the key already has.
///
/// Keys may carry an expiry (monotonic ms): an expired key is removed when it is next touched,
/// and `sweep` removes others by sampling, as Redis does. Used on the loop thread only; the
/// owner frees it with `deallocate()`.
struct Keyspace: ~Copyable {
    struct Entry {
        var hash: UInt64 = 0
        var key: UnsafeMutablePointer<UInt8>? = nil
        var keyCount = 0
        var value: UnsafeMutablePointer<UInt8>? = nil
        var valueCount = 0
        var valueCapacity = 0
        /// Monotonic ms after which the key is gone; 0 = never.
        var expiresAt: Int64 = 0
    }

    private var slots: UnsafeMutablePointer<Entry>
    private var capacity: Int
    private(set) var count = 0
    /// Keys with an expiry (for the sweep).
    private(set) var expiring = 0
    private var sweepCursor = 0

    init() {
        capacity = 1024
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Entry(), count: capacity)
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        // FNV-1a, eight bytes at a time where it can.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 0
        while i + 8 <= n {
            h = (h ^ UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)) &* 0x100_0000_01b3
            h ^= h >> 29
            i += 8
        }
        while i < n {
            h = (h ^ UInt64(p[i])) &* 0x100_0000_01b3
            i += 1
        }
        return h | 1  // 0 marks an empty slot
    }

    /// The slot holding `key`, or nil. An expired key is removed and not found.
    @inline(__always)
    mutating func find(_ key: UnsafePointer<UInt8>, _ n: Int, now: Int64) -> UnsafeMutablePointer<Entry>? {
        let h = Self.hash(key, n)
        var i = Int(h & UInt64(capacity - 1))
        while true {
            let e = slots + i
            if e.pointee.hash == 0 { return nil }
            if e.pointee.hash == h && e.pointee.keyCount == n, let k = e.pointee.key, memcmp(k, key, n) == 0 {
                if e.pointee.expiresAt != 0 && e.pointee.expiresAt <= now {
                    remove(e)
                    return nil
                }
                return e
            }
            i = (i + 1) & (capacity - 1)
        }
    }

    /// The slot for `key`, made (empty value) if it is absent; `created` tells which.
    mutating func findOrInsert(_ key: UnsafePointer<UInt8>, _ n: Int, now: Int64) -> (entry: UnsafeMutablePointer<Entry>, created: Bool) {
        if let e = find(key, n, now: now) { return (e, false) }
        if (count + 1) * 2 > capacity { grow() }
        let h = Self.hash(key, n)
        var i = Int(h & UInt64(capacity - 1))
        while slots[i].hash != 0 { i = (i + 1) & (capacity - 1) }
        let k = UnsafeMutablePointer<UInt8>.allocate(capacity: max(n, 1))
        k.initialize(from: key, count: n)
        slots[i] = Entry(hash: h, key: k, keyCount: n)
        count += 1
        return (slots + i, true)
    }

    /// Replaces the entry's value with `bytes`, reusing its space when it fits.
    func setValue(_ e: UnsafeMutablePointer<Entry>, _ bytes: UnsafePointer<UInt8>, _ n: Int) {
        if n > e.pointee.valueCapacity {
            e.pointee.value?.deallocate()
            e.pointee.value = .allocate(capacity: max(n, 16))
            e.pointee.valueCapacity = max(n, 16)
        }
        if n > 0, let v = e.pointee.value { v.update(from: bytes, count: n) }
        e.pointee.valueCount = n
    }

    /// Sets or clears the entry's expiry (0 = none).
    mutating func setExpiry(_ e: UnsafeMutablePointer<Entry>, _ at: Int64) {
        if (e.pointee.expiresAt == 0) != (at == 0) { expiring += at == 0 ? -1 : 1 }
        e.pointee.expiresAt = at
    }

    /// Removes the entry, closing the gap so probing stays correct (backward shift).
    mutating func remove(_ e: UnsafeMutablePointer<Entry>) {
        if e.pointee.expiresAt != 0 { expiring -= 1 }
        e.pointee.key?.deallocate()
        e.pointee.value?.deallocate()
        var hole = e - slots
        var j = hole
        while true {
            j = (j + 1) & (capacity - 1)
            guard slots[j].hash != 0 else { break }
            let home = Int(slots[j].hash & UInt64(capacity - 1))
            // Move j into the hole when its home is not in (hole, j] (cyclically).
            let between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !between {
                slots[hole] = slots[j]
                hole = j
            }
        }
        slots[hole] = Entry()
        count -= 1
    }

    /// Removes every key.
    mutating func removeAll() {
        for i in 0..<capacity where slots[i].hash != 0 {
            slots[i].key?.deallocate()
            slots[i].value?.deallocate()
            slots[i] = Entry()
        }
        count = 0
        expiring = 0
    }

    /// Looks at up to `budget` slots from where the last sweep stopped and removes the expired
    /// keys among them; returns how many it removed.
    mutating func sweep(now: Int64, budget: Int) -> Int {
        guard expiring > 0 else { return 0 }
        var removed = 0
        for _ in 0..<min(budget, capacity) {
            sweepCursor = (sweepCursor + 1) & (capacity - 1)
            let e = slots + sweepCursor
            if e.pointee.hash != 0 && e.pointee.expiresAt != 0 && e.pointee.expiresAt <= now {
                remove(e)
                removed += 1
                // The backward shift may have moved an unvisited entry into this slot.
                sweepCursor = (sweepCursor - 1) & (capacity - 1)
            }
        }
        return removed
    }

    private mutating func grow() {
        let old = slots, oldCapacity = capacity
        capacity *= 2
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Entry(), count: capacity)
        for i in 0..<oldCapacity where old[i].hash != 0 {
            var j = Int(old[i].hash & UInt64(capacity - 1))
            while slots[j].hash != 0 { j = (j + 1) & (capacity - 1) }
            slots[j] = old[i]
        }
        old.deinitialize(count: oldCapacity)
        old.deallocate()
    }

    /// Frees every key and value and the table.
    deinit {
        for i in 0..<capacity where slots[i].hash != 0 {
            slots[i].key?.deallocate()
            slots[i].value?.deallocate()
        }
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }
}
