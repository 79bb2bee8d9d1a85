#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// Every figure of a running daemon read from its stats page at one moment, by any process that
/// maps the page (the supervisor for `gnetctl`, a worker for the `metrics` service): the
/// supervisor's header, and for every live worker its loop's counters and each service's
/// traffic, counters and histograms. Reading costs the workers nothing.
struct MetricsSnapshot {
    /// One service's figures in one worker.
    struct Service {
        let name: String
        let kind: String
        let traffic: LoopCounters
        let counters: [(name: String, value: UInt64)]
        let histograms: [(name: String, buckets: [UInt64], sumMicros: UInt64)]
    }
    /// One worker process.
    struct Worker {
        let index: Int
        let generation: Int
        let pid: Int
        let state: WorkerState
        let startedUnixMs: UInt64
        let loop: LoopCounters
        /// Empty when its generation's catalog is no longer in the page.
        let services: [Service]
    }

    let name: String
    let version: String
    let supervisorPID: Int
    let generation: Int
    let reloadsOK: UInt64
    let reloadsFailed: UInt64
    let respawns: UInt64
    let startedUnixMs: UInt64
    let workersConfigured: Int
    let takenUnixMs: UInt64
    /// Live workers (slots in use), by generation then index.
    let workers: [Worker]

    /// Reads `page`, placing service figures with `kinds` (the daemon's service kinds).
    init(page: StatsPage, identity: DaemonIdentity, kinds: [ServiceKind]) {
        let summary = page.summary
        name = identity.name
        version = identity.version
        supervisorPID = Int(summary.get(.supervisorPID))
        generation = Int(summary.get(.generation))
        reloadsOK = summary.get(.reloadsOK)
        reloadsFailed = summary.get(.reloadsFailed)
        respawns = summary.get(.respawns)
        startedUnixMs = summary.get(.startedUnixMs)
        workersConfigured = Int(summary.get(.workersConfigured))
        takenUnixMs = gnet_realtime_ms()
        var layouts: [Int: SlotLayout] = [:]
        var found: [Worker] = []
        for i in 0..<min(Int(summary.get(.slotsUsed)), StatsPage.slotCount) {
            let slot = page.slot(i)
            guard gnet_counter_load(&slot.pointee.in_use) == 1 else { continue }
            let generation = Int(gnet_counter_load(&slot.pointee.generation))
            if layouts[generation] == nil, let catalog = summary.catalog(generation: generation) {
                layouts[generation] = SlotLayout(catalog, kinds: kinds)
            }
            let figures = page.serviceCounters(i)
            let services = (layouts[generation]?.entries ?? []).map { e in
                Service(
                    name: e.service, kind: e.kind,
                    traffic: LoopCounters(page.traffic(i, e)),
                    counters: e.counterNames.enumerated().map { ($1, gnet_counter_load(figures + e.counters + $0)) },
                    histograms: e.histogramNames.enumerated().map { k, name in
                        let h = DurationHistogram.read(figures + e.histograms + k * DurationHistogram.width)
                        return (name, h.buckets, h.sumMicros)
                    })
            }
            found.append(Worker(index: Int(gnet_counter_load(&slot.pointee.index)), generation: generation,
                                pid: Int(gnet_counter_load(&slot.pointee.pid)), state: page.state(i),
                                startedUnixMs: gnet_counter_load(&slot.pointee.started_unix_ms),
                                loop: page.counters(i), services: services))
        }
        workers = found.sorted { ($0.generation, $0.index) < ($1.generation, $1.index) }
    }
}
