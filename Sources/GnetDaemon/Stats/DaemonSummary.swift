#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// The part of the stats page after the worker slots that lets any worker render the whole
/// daemon's figures without asking the supervisor: a header the supervisor keeps current
/// (generation, reloads, respawns) and, per generation, the services it runs (a catalog, from
/// which `SlotLayout` places each worker's figures).
///
/// Catalogs are kept for the last `catalogCount` generations, each in its own 64 KiB entry:
/// the generation number is cleared while the text is written and stored last, so a reader
/// that finds its generation before and after copying the text has read it whole.
struct DaemonSummary {
    /// Header fields, in 8-byte words.
    enum Field: Int {
        case supervisorPID = 0, generation, reloadsOK, reloadsFailed, respawns, startedUnixMs, workersConfigured
        /// One past the highest slot ever claimed: readers look no further (pages of slots
        /// never used stay untouched).
        case slotsUsed
    }
    static let headerBytes = 512
    static let catalogCount = 8
    static let catalogBytes = 64 * 1024
    /// The area's size.
    static let bytes = headerBytes + catalogCount * catalogBytes

    let base: UnsafeMutableRawPointer

    private func word(_ offset: Int) -> UnsafeMutablePointer<UInt64> {
        (base + offset).assumingMemoryBound(to: UInt64.self)
    }

    func set(_ field: Field, _ value: UInt64) { gnet_counter_store(word(field.rawValue * 8), value) }
    func get(_ field: Field) -> UInt64 { gnet_counter_load(word(field.rawValue * 8)) }

    private func entry(_ generation: Int) -> UnsafeMutableRawPointer {
        base + Self.headerBytes + (generation % Self.catalogCount) * Self.catalogBytes
    }

    /// Records the services of `generation` (supervisor); false when the text does not fit.
    @discardableResult
    func publishCatalog(generation: Int, services: [(name: String, kind: String)]) -> Bool {
        let text = Array(services.map { "\($0.name)\t\($0.kind)\n" }.joined().utf8)
        let e = entry(generation)
        let stamp = e.assumingMemoryBound(to: UInt64.self)
        guard text.count <= Self.catalogBytes - 16 else {
            gnet_counter_store(stamp, 0)
            return false
        }
        if gnet_counter_load(stamp) == UInt64(generation) { return true }
        gnet_counter_store(stamp, 0)
        gnet_counter_store(stamp + 1, UInt64(text.count))
        text.withUnsafeBytes { if let p = $0.baseAddress { (e + 16).copyMemory(from: p, byteCount: $0.count) } }
        gnet_release_fence()
        gnet_counter_store(stamp, UInt64(generation))
        return true
    }

    /// The services of `generation` (any process); nil when its catalog has been overwritten by
    /// a later generation's or is being written.
    func catalog(generation: Int) -> [(name: String, kind: String)]? {
        let e = entry(generation)
        let stamp = e.assumingMemoryBound(to: UInt64.self)
        guard generation > 0, gnet_counter_load(stamp) == UInt64(generation) else { return nil }
        gnet_acquire_fence()
        let count = min(Int(gnet_counter_load(stamp + 1)), Self.catalogBytes - 16)
        let text = String(decoding: UnsafeRawBufferPointer(start: e + 16, count: count), as: UTF8.self)
        gnet_acquire_fence()
        guard gnet_counter_load(stamp) == UInt64(generation) else { return nil }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
    }
}
