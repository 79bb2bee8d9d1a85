#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// Small files of a `root` route held in memory, ready to answer without a system call: the
/// response head (status line to `Accept-Ranges`, without `Date`) and the whole body, found by
/// the request path as the client wrote it. Like nginx's `open_file_cache`, an entry is trusted
/// for a validity time, then checked against the file again (opened beneath the root anew,
/// compared by device, inode, size, modification and change times) and either kept or reread.
/// A file changed in place is therefore served as it was for at most the validity time.
///
/// Memory is the cache's own (no reference counting on the hot path) and bounded: files up to
/// `maxFile` bytes, `maxBytes` in all, `slotCount` entries (direct-mapped by a hash of route and
/// path: a new entry takes its slot's place). Used on its loop thread only; the owner frees it
/// with `deallocate()`.
struct FileCache: ~Copyable {
    /// What identifies one version of a file.
    struct Identity: Equatable {
        var device: UInt64, inode: UInt64, size: Int
        var modified: timespec, changed: timespec

        init(_ st: stat) {
            device = UInt64(st.st_dev); inode = UInt64(st.st_ino); size = Int(st.st_size)
            modified = st.st_mtim; changed = st.st_ctim
        }

        static func == (a: Identity, b: Identity) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    struct Entry {
        var hash: UInt64 = 0
        /// The route index and the request path, as looked up.
        var route = -1
        var key: UnsafeMutablePointer<UInt8>? = nil
        var keyCount = 0
        /// Monotonic ns until which the entry is served without looking at the file.
        var validUntil: Int64 = 0
        var identity: Identity? = nil
        /// The response head up to and including `Accept-Ranges: bytes\r\n`.
        var head: UnsafeMutableRawPointer? = nil
        var headCount = 0
        var body: UnsafeMutableRawPointer? = nil
        var bodyCount = 0
        /// For the access log and 304s: the file's modification time (Unix seconds).
        var modified = 0
    }

    static let slotCount = 1024
    let maxFile: Int
    let maxBytes: Int
    let validNanos: Int64
    private let slots: UnsafeMutablePointer<Entry>
    private(set) var bytesHeld = 0

    /// A cache trusting entries for `valid` (zero: nothing is cached).
    init(valid: Duration, maxFile: Int = 256 << 10, maxBytes: Int = 32 << 20) {
        validNanos = valid.nanoseconds
        self.maxFile = maxFile
        self.maxBytes = maxBytes
        slots = .allocate(capacity: Self.slotCount)
        slots.initialize(repeating: Entry(), count: Self.slotCount)
    }

    var enabled: Bool { validNanos > 0 }

    @inline(__always)
    static func hash(route: Int, _ path: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(UInt(bitPattern: route))
        for i in 0..<count { h = (h ^ UInt64(path[i])) &* 0x100_0000_01b3 }
        return h
    }

    /// The slot for (`route`, `path`) when it holds that file; `fresh` tells whether it may be
    /// served without checking the file again.
    @inline(__always)
    func find(route: Int, _ path: UnsafePointer<UInt8>, _ count: Int, hash: UInt64, now: Int64) -> (entry: UnsafeMutablePointer<Entry>, fresh: Bool)? {
        let e = slots + Int(hash & UInt64(Self.slotCount - 1))
        guard e.pointee.hash == hash, e.pointee.route == route, e.pointee.keyCount == count, let key = e.pointee.key,
              memcmp(key, path, count) == 0 else { return nil }
        return (e, now < e.pointee.validUntil)
    }

    /// Trusts `entry` again until `now` plus the validity (the file was checked unchanged).
    func renew(_ entry: UnsafeMutablePointer<Entry>, now: Int64) { entry.pointee.validUntil = now &+ validNanos }

    /// Stores the file open on `fd` (already checked to be a regular file with `st`) for
    /// (`route`, `path`), reading it whole; nil when it is too large, the budget is spent, or
    /// the file did not read back as `st` said (it changed meanwhile: not cached).
    mutating func store(route: Int, _ path: UnsafePointer<UInt8>, _ count: Int, hash: UInt64, now: Int64,
                        fd: Int32, st: stat, head: [UInt8]) -> UnsafeMutablePointer<Entry>? {
        let size = Int(st.st_size)
        guard enabled, size <= maxFile else { return nil }
        let e = slots + Int(hash & UInt64(Self.slotCount - 1))
        if let (same, _) = find(route: route, path, count, hash: hash, now: now), same.pointee.identity == Identity(st) {
            renew(same, now: now)  // checked again and unchanged: no need to read it
            return same
        }
        release(e)
        guard bytesHeld + size + head.count + count <= maxBytes else { return nil }
        let body = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
        var got = 0
        while got < size {
            guard let n = try? syscall(where: "pread", { pread(fd, body + got, size - got, off_t(got)) }), n > 0 else { break }
            got += n
        }
        guard got == size else {
            body.deallocate()
            return nil
        }
        let key = UnsafeMutablePointer<UInt8>.allocate(capacity: max(count, 1))
        key.initialize(from: path, count: count)
        let headBytes = UnsafeMutableRawPointer.allocate(byteCount: head.count, alignment: 16)
        head.withUnsafeBytes { if let p = $0.baseAddress { headBytes.copyMemory(from: p, byteCount: head.count) } }
        e.pointee = Entry(hash: hash, route: route, key: key, keyCount: count, validUntil: now &+ validNanos, identity: Identity(st),
                          head: headBytes, headCount: head.count, body: body, bodyCount: size, modified: Int(st.st_mtim.tv_sec))
        bytesHeld += size + head.count + count
        return e
    }

    /// Empties a slot.
    mutating func release(_ e: UnsafeMutablePointer<Entry>) {
        guard e.pointee.key != nil else { return }
        bytesHeld -= e.pointee.bodyCount + e.pointee.headCount + e.pointee.keyCount
        e.pointee.key?.deallocate()
        e.pointee.head?.deallocate()
        e.pointee.body?.deallocate()
        e.pointee = Entry()
    }

    /// Frees every entry and the slots.
    deinit {
        for i in 0..<Self.slotCount {
            slots[i].key?.deallocate()
            slots[i].head?.deallocate()
            slots[i].body?.deallocate()
        }
        slots.deinitialize(count: Self.slotCount)
        slots.deallocate()
    }
}
