import Gnet

/// A snapshot in the Prometheus text exposition format (version 0.0.4): one family at a time,
/// each with its `# HELP` and `# TYPE`, samples labelled by worker and generation (and service
/// for service figures). Names start with the daemon's name (`gnetd_`, `gnet_resp_`); a kind's
/// own counters are `PREFIX_KIND_COUNTER` (untyped: a kind's counter may be a gauge) and its
/// histograms `PREFIX_KIND_NAME_seconds`.
enum PrometheusExposition {
    /// The response's Content-Type.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func render(_ s: MetricsSnapshot) -> String {
        var out = ""
        let p = metricName(s.name)
        func family(_ name: String, _ type: String, _ help: String, _ samples: () -> Void) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            samples()
        }
        func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
            out += name
            if !labels.isEmpty {
                out += "{" + labels.map { "\($0.0)=\"\(labelValue($0.1))\"" }.joined(separator: ",") + "}"
            }
            out += " \(value)\n"
        }
        family("\(p)_info", "gauge", "The daemon's version (value 1).") {
            sample("\(p)_info", [("version", s.version)], "1")
        }
        family("\(p)_start_time_seconds", "gauge", "When the supervisor started, in seconds since the epoch.") {
            sample("\(p)_start_time_seconds", [], seconds(s.startedUnixMs))
        }
        family("\(p)_generation", "gauge", "The serving generation (one per start or reload).") {
            sample("\(p)_generation", [], "\(s.generation)")
        }
        family("\(p)_workers_configured", "gauge", "Workers per generation.") {
            sample("\(p)_workers_configured", [], "\(s.workersConfigured)")
        }
        family("\(p)_reloads_total", "counter", "Reloads by outcome.") {
            sample("\(p)_reloads_total", [("result", "ok")], "\(s.reloadsOK)")
            sample("\(p)_reloads_total", [("result", "failed")], "\(s.reloadsFailed)")
        }
        family("\(p)_respawns_total", "counter", "Workers started again after an unexpected exit.") {
            sample("\(p)_respawns_total", [], "\(s.respawns)")
        }
        func worker(_ w: MetricsSnapshot.Worker) -> [(String, String)] { [("worker", "\(w.index)"), ("generation", "\(w.generation)")] }
        family("\(p)_worker_state", "gauge", "Each live worker's state (value 1).") {
            for w in s.workers { sample("\(p)_worker_state", worker(w) + [("state", w.state.name), ("pid", "\(w.pid)")], "1") }
        }
        family("\(p)_worker_start_time_seconds", "gauge", "When each worker started, in seconds since the epoch.") {
            for w in s.workers { sample("\(p)_worker_start_time_seconds", worker(w), seconds(w.startedUnixMs)) }
        }
        family("\(p)_worker_loop_iterations_total", "counter", "Turns of each worker's event loop.") {
            for w in s.workers { sample("\(p)_worker_loop_iterations_total", worker(w), "\(w.loop.loopIterations)") }
        }
        // Per service and worker: the traffic the loop counted.
        let traffic: [(String, String, String, (LoopCounters) -> UInt64)] = [
            ("connections_open", "gauge", "Open connections.", { $0.connectionsOpen }),
            ("connections_accepted_total", "counter", "Connections accepted.", { $0.connectionsAccepted }),
            ("connections_rejected_total", "counter", "Connections refused at max_connections.", { $0.connectionsRejected }),
            ("connections_closed_total", "counter", "Connections closed.", { $0.connectionsClosed }),
            ("received_bytes_total", "counter", "Bytes read from clients.", { $0.bytesIn }),
            ("sent_bytes_total", "counter", "Bytes written to clients.", { $0.bytesOut }),
            ("received_datagrams_total", "counter", "Datagrams received.", { $0.datagramsIn }),
            ("sent_datagrams_total", "counter", "Datagrams sent.", { $0.datagramsOut }),
            ("errors_total", "counter", "Failed system calls on connections (reads, writes, accepts).", { $0.errors }),
        ]
        let served = s.workers.flatMap { w in w.services.map { (w, $0) } }
        func labels(_ w: MetricsSnapshot.Worker, _ v: MetricsSnapshot.Service) -> [(String, String)] { [("service", v.name)] + worker(w) }
        for (suffix, type, help, value) in traffic {
            family("\(p)_service_\(suffix)", type, help) {
                for (w, v) in served { sample("\(p)_service_\(suffix)", labels(w, v), "\(value(v.traffic))") }
            }
        }
        // Each kind's own counters and histograms, one family per name.
        var counterFamilies: [String] = []
        var histogramFamilies: [String] = []
        for (_, v) in served {
            for c in v.counters where !counterFamilies.contains("\(v.kind)\t\(c.name)") { counterFamilies.append("\(v.kind)\t\(c.name)") }
            for h in v.histograms where !histogramFamilies.contains("\(v.kind)\t\(h.name)") { histogramFamilies.append("\(v.kind)\t\(h.name)") }
        }
        for key in counterFamilies {
            let parts = key.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let name = "\(p)_\(metricName(parts[0]))_\(metricName(parts[1]))"
            family(name, "untyped", "The \(parts[0]) services' counter \(parts[1]).") {
                for (w, v) in served where v.kind == parts[0] {
                    for c in v.counters where c.name == parts[1] { sample(name, labels(w, v), "\(c.value)") }
                }
            }
        }
        let bounds = DurationHistogram.boundsNanos.map { seconds(nanos: $0) } + ["+Inf"]
        for key in histogramFamilies {
            let parts = key.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let name = "\(p)_\(metricName(parts[0]))_\(metricName(parts[1]))_seconds"
            family(name, "histogram", "The \(parts[0]) services' \(parts[1].replacing("_", with: " ")), in seconds.") {
                for (w, v) in served where v.kind == parts[0] {
                    for h in v.histograms where h.name == parts[1] {
                        var cumulative: UInt64 = 0
                        for (i, n) in h.buckets.enumerated() {
                            cumulative &+= n
                            sample("\(name)_bucket", labels(w, v) + [("le", bounds[i])], "\(cumulative)")
                        }
                        sample("\(name)_sum", labels(w, v), seconds(nanos: Int64(h.sumMicros) * 1000))
                        sample("\(name)_count", labels(w, v), "\(cumulative)")
                    }
                }
            }
        }
        return out
    }

    /// `name` with every character outside `[a-zA-Z0-9_]` replaced by `_` (and `_` in front of
    /// a leading digit): a valid metric name part.
    static func metricName(_ name: String) -> String {
        var out = String(name.unicodeScalars.map { c -> Character in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_") ? Character(c) : "_"
        })
        if let first = out.first, first.isNumber { out = "_" + out }
        return out.isEmpty ? "_" : out
    }

    /// A label value with `\`, `"` and newlines escaped.
    static func labelValue(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Milliseconds since the epoch as seconds, three decimals.
    static func seconds(_ ms: UInt64) -> String { "\(ms / 1000).\(pad(Int(ms % 1000), 3))" }

    /// Nanoseconds as seconds, without trailing zeros (`0.0001`, `2.5`, `10`).
    static func seconds(nanos: Int64) -> String {
        let whole = nanos / 1_000_000_000
        var fraction = pad(Int(nanos % 1_000_000_000), 9)
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
    }

    private static func pad(_ n: Int, _ width: Int) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
