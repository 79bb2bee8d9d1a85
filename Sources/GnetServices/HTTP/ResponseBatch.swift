/// Responses gathered during one `onTraffic` call, to be written with one syscall: a growable
/// byte buffer that keeps its memory between batches, so appending allocates nothing once it
/// has grown. It owns that memory (no copies) and frees it when destroyed.
struct ResponseBatch: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    var isEmpty: Bool { count == 0 }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func append(_ source: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        if count + n > capacity { grow(to: count + n) }
        (base + count).copyMemory(from: source, byteCount: n)
        count += n
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { if let p = $0.baseAddress { append(p, count: $0.count) } }
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { if let p = $0.baseAddress { append(p, count: $0.count) } }
    }

    mutating func removeAll() { count = 0 }

    private mutating func grow(to needed: Int) {
        var c = capacity
        while c < needed { c *= 2 }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
        fresh.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = fresh
        capacity = c
    }

    deinit { base.deallocate() }
}
