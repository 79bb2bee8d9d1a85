import CGnetLinux
import Gnet

/// Where each service's figures sit in a worker's stats slot: for every service, one after
/// another, its traffic (connections, bytes, datagrams, errors: a `gnet_loop_counters_t`
/// counted by the loop), its kind's counters, then its kind's duration histograms. The
/// supervisor, the worker and every reader derive it from the same configuration.
struct SlotLayout: Sendable {
    /// One service's part of the slot.
    struct Entry: Sendable {
        let service: String
        let kind: String
        /// Index of its traffic block (`trafficWidth` counters).
        let traffic: Int
        /// Its kind's counter names, from `counters` on.
        let counterNames: [String]
        let counters: Int
        /// Its kind's histogram names, each `DurationHistogram.width` counters, from `histograms` on.
        let histogramNames: [String]
        let histograms: Int
    }

    /// Counters in a traffic block.
    static let trafficWidth = MemoryLayout<gnet_loop_counters_t>.stride / 8
    /// Counters a slot holds for all services together.
    static let capacity = Int(gnet_service_counter_capacity())

    let entries: [Entry]
    /// Counters used in all.
    let width: Int

    /// The layout of `services` (name and kind name), with the kinds' counters and histograms.
    init(_ services: [(name: String, kind: String)], kinds: [ServiceKind]) {
        var next = 0
        var entries: [Entry] = []
        for s in services {
            let kind = kinds.first { $0.name == s.kind }
            let counterNames = kind?.counterNames ?? []
            let histogramNames = kind?.histogramNames ?? []
            let traffic = next
            let counters = traffic + Self.trafficWidth
            let histograms = counters + counterNames.count
            next = histograms + histogramNames.count * DurationHistogram.width
            entries.append(Entry(service: s.name, kind: s.kind, traffic: traffic, counterNames: counterNames, counters: counters,
                                 histogramNames: histogramNames, histograms: histograms))
        }
        self.entries = entries
        width = next
    }

    /// The layout of a configuration's services.
    init(_ config: DaemonConfig, kinds: [ServiceKind]) {
        self.init(config.services.map { ($0.name, $0.kind) }, kinds: kinds)
    }

    /// Whether it fits in a slot.
    var fits: Bool { width <= Self.capacity }
}
