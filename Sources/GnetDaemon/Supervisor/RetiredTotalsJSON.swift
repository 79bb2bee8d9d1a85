import CGnetLinux
import Gnet

/// The counters of exited workers as a re-executed supervisor's handoff carries them, so the
/// totals `gnetctl stats` shows never go backwards across an upgrade.
extension Supervisor.RetiredTotals {
    /// The totals as JSON (every counter of every service's traffic included).
    var json: JSONValue {
        [
            "accepted": .init(accepted), "rejected": .init(rejected), "bytesIn": .init(bytesIn), "bytesOut": .init(bytesOut),
            "errors": .init(errors), "datagramsIn": .init(datagramsIn), "datagramsOut": .init(datagramsOut),
            "services": .object(services.mapValues { counters in .object(counters.mapValues { JSONValue($0) }) }),
            "serviceTraffic": .object(serviceTraffic.mapValues { t in
                .array([t.connectionsOpen, t.connectionsAccepted, t.connectionsClosed, t.connectionsRejected, t.bytesIn, t.bytesOut,
                        t.readCalls, t.writeCalls, t.loopIterations, t.errors, t.datagramsIn, t.datagramsOut].map { JSONValue($0) })
            }),
        ]
    }

    /// The totals in `json`; nil when a member is missing or not a counter.
    init?(json: JSONValue) {
        guard let accepted = json["accepted"]?.uint, let rejected = json["rejected"]?.uint, let bytesIn = json["bytesIn"]?.uint,
              let bytesOut = json["bytesOut"]?.uint, let errors = json["errors"]?.uint, let datagramsIn = json["datagramsIn"]?.uint,
              let datagramsOut = json["datagramsOut"]?.uint, let services = json["services"]?.object,
              let traffic = json["serviceTraffic"]?.object else { return nil }
        self.init(accepted: accepted, rejected: rejected, bytesIn: bytesIn, bytesOut: bytesOut, errors: errors,
                  datagramsIn: datagramsIn, datagramsOut: datagramsOut)
        for (service, counters) in services {
            guard let members = counters.object else { return nil }
            for (name, v) in members {
                guard let n = v.uint else { return nil }
                self.services[service, default: [:]][name] = n
            }
        }
        for (service, list) in traffic {
            guard let v = list.array?.compactMap(\.uint), v.count == 12 else { return nil }
            var raw = gnet_loop_counters_t(connections_open: v[0], connections_accepted: v[1], connections_closed: v[2],
                                           connections_rejected: v[3], bytes_in: v[4], bytes_out: v[5], read_calls: v[6],
                                           write_calls: v[7], loop_iterations: v[8], errors: v[9], datagrams_in: v[10], datagrams_out: v[11])
            serviceTraffic[service] = LoopCounters(&raw)
        }
    }
}
