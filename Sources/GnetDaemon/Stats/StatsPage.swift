#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// Where a worker is in its life, as written in its stats slot.
public enum WorkerState: UInt64, Sendable {
    case starting = 0, serving = 1, draining = 2, exited = 3
    /// Its loop made no progress for `worker_stall_timeout`: killed, a replacement started.
    case stalled = 4

    public var name: String {
        switch self {
        case .starting: "starting"; case .serving: "serving"; case .draining: "draining"; case .exited: "exited"; case .stalled: "stalled"
        }
    }
}

/// The daemon's shared stats page: a memfd mapped by the supervisor and every worker, one
/// 16 KiB slot per worker, then the daemon's summary (`DaemonSummary`). A worker's loop writes its counters into its slot with relaxed
/// atomic stores as it runs (no extra work per message); the supervisor reads them on demand,
/// so `gnetctl stats` costs the workers nothing.
public final class StatsPage: @unchecked Sendable {
    /// Slots in the page: room for two full generations of the largest worker count plus spares.
    public static let slotCount = 2304
    /// The memfd (inherited by workers).
    public let fd: Int32
    let base: UnsafeMutablePointer<gnet_worker_slot_t>
    private let bytes: Int

    /// The header and per-generation catalogs after the slots.
    let summary: DaemonSummary
    /// The page's size: the slots and the summary.
    static let pageBytes = slotCount * MemoryLayout<gnet_worker_slot_t>.stride + DaemonSummary.bytes

    private init(fd: Int32) throws(SystemError) {
        self.fd = fd
        bytes = Self.pageBytes
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw SystemError("mmap", errno: errno)
        }
        base = p.bindMemory(to: gnet_worker_slot_t.self, capacity: Self.slotCount)
        summary = DaemonSummary(base: p + Self.slotCount * MemoryLayout<gnet_worker_slot_t>.stride)
    }

    /// Creates the page (supervisor).
    public static func create(name: String = "gnetd") throws(SystemError) -> StatsPage {
        let fd = gnet_memfd(name + "-stats")
        guard fd >= 0 else { throw SystemError("memfd_create", errno: errno) }
        guard ftruncate(fd, off_t(pageBytes)) == 0 else {
            let e = errno
            close(fd)
            throw SystemError("ftruncate", errno: e)
        }
        return try StatsPage(fd: fd)
    }

    /// Maps a page created by the supervisor (worker).
    public static func attach(fd: Int32) throws(SystemError) -> StatsPage { try StatsPage(fd: fd) }

    deinit {
        munmap(base, bytes)
        close(fd)
    }

    /// Slot `i`.
    public func slot(_ i: Int) -> UnsafeMutablePointer<gnet_worker_slot_t> { base + i }

    /// A free slot, marked in use and zeroed; nil when all are taken.
    func claim() -> Int? {
        for i in 0..<Self.slotCount where gnet_counter_load(&base[i].in_use) == 0 {
            base[i] = gnet_worker_slot_t()
            gnet_counter_store(&base[i].in_use, 1)
            if UInt64(i) >= summary.get(.slotsUsed) { summary.set(.slotsUsed, UInt64(i + 1)) }
            return i
        }
        return nil
    }

    /// Frees slot `i`.
    func release(_ i: Int) { gnet_counter_store(&base[i].in_use, 0) }

    /// The service counters of slot `i` (`GNET_SERVICE_COUNTERS` of them).
    func serviceCounters(_ i: Int) -> UnsafeMutablePointer<UInt64> { gnet_service_counters(base + i) }

    /// The traffic block of the service `entry` (SlotLayout) in slot `i`: what the worker's
    /// loop counts for that service's listener group.
    func traffic(_ i: Int, _ entry: SlotLayout.Entry) -> UnsafeMutablePointer<gnet_loop_counters_t> {
        UnsafeMutableRawPointer(serviceCounters(i) + entry.traffic).bindMemory(to: gnet_loop_counters_t.self, capacity: 1)
    }

    /// The counters of slot `i`.
    func counters(_ i: Int) -> LoopCounters {
        withUnsafeMutablePointer(to: &base[i].counters) { LoopCounters($0) }
    }

    func state(_ i: Int) -> WorkerState { WorkerState(rawValue: gnet_counter_load(&base[i].state)) ?? .exited }
    func setState(_ i: Int, _ s: WorkerState) { gnet_counter_store(&base[i].state, s.rawValue) }
}
