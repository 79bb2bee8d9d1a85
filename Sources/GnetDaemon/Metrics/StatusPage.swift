import Gnet

/// The `metrics` service's page at `/`: a small HTML view of a snapshot that reloads itself —
/// the daemon, its live workers, and each service summed over its workers with per-second
/// rates since the previous snapshot this worker rendered.
enum StatusPage {
    /// Service totals kept between renders, for rates.
    struct Totals {
        var unixMs: UInt64 = 0
        var byService: [String: (accepted: UInt64, bytesIn: UInt64, bytesOut: UInt64)] = [:]
    }

    static func render(_ s: MetricsSnapshot, refreshSeconds: Int, previous: inout Totals) -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(refreshSeconds)">
        <title>\(escape(s.name)) \(escape(s.version)) — generation \(s.generation)</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
        table{border-collapse:collapse}th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}td small{white-space:normal}
        th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}.serving{color:#080}.draining{color:#a60}
        .stalled,.exited{color:#b00}small{color:#666}
        </style></head><body>
        <h1>\(escape(s.name)) \(escape(s.version))</h1>
        <p>supervisor pid \(s.supervisorPID) · up \(duration(ms: s.takenUnixMs &- s.startedUnixMs)) · generation \(s.generation) · \(s.workersConfigured) workers configured · reloads \(s.reloadsOK) ok, \(s.reloadsFailed) failed · respawns \(s.respawns)</p>
        <h2>Workers</h2>
        <table><tr><th>worker</th><th>generation</th><th>pid</th><th>state</th><th>up</th><th>open</th><th>accepted</th><th>bytes in</th><th>bytes out</th><th>loop turns</th></tr>

        """
        for w in s.workers {
            html += "<tr><td>\(w.index)</td><td>\(w.generation)</td><td>\(w.pid)</td><td class=\"\(w.state.name)\">\(w.state.name)</td>"
            html += "<td>\(duration(ms: s.takenUnixMs &- w.startedUnixMs))</td><td>\(w.loop.connectionsOpen)</td><td>\(w.loop.connectionsAccepted)</td>"
            html += "<td>\(bytes(w.loop.bytesIn))</td><td>\(bytes(w.loop.bytesOut))</td><td>\(w.loop.loopIterations)</td></tr>\n"
        }
        html += """
        </table>
        <h2>Services</h2>
        <table><tr><th>service</th><th>kind</th><th>open</th><th>accepted</th><th>per second</th><th>rejected</th><th>bytes in</th><th>in/s</th><th>bytes out</th><th>out/s</th><th>errors</th><th>counters</th></tr>

        """
        // Each service summed over its live workers, in the order they are configured.
        var order: [String] = []
        var sums: [String: (kind: String, traffic: LoopCounters, counters: [(String, UInt64)])] = [:]
        for w in s.workers {
            for v in w.services {
                if var sum = sums[v.name] {
                    sum.traffic.add(v.traffic)
                    for (i, c) in v.counters.enumerated() where i < sum.counters.count && sum.counters[i].0 == c.name { sum.counters[i].1 &+= c.value }
                    sums[v.name] = sum
                } else {
                    order.append(v.name)
                    sums[v.name] = (v.kind, v.traffic, v.counters.map { ($0.name, $0.value) })
                }
            }
        }
        let seconds = Double(s.takenUnixMs &- previous.unixMs) / 1000
        let haveRates = previous.unixMs > 0 && seconds > 0 && seconds <= 600
        var now = Totals(unixMs: s.takenUnixMs)
        for name in order {
            guard let sum = sums[name] else { continue }
            let t = sum.traffic
            now.byService[name] = (t.connectionsAccepted, t.bytesIn, t.bytesOut)
            func rate(_ value: UInt64, _ before: UInt64?) -> String {
                guard haveRates, let before, value >= before else { return "–" }
                return String(Int((Double(value - before) / seconds).rounded()))
            }
            let before = previous.byService[name]
            html += "<tr><td>\(escape(name))</td><td>\(escape(sum.kind))</td><td>\(t.connectionsOpen)</td><td>\(t.connectionsAccepted)</td>"
            html += "<td>\(rate(t.connectionsAccepted, before?.accepted))</td><td>\(t.connectionsRejected)</td>"
            html += "<td>\(bytes(t.bytesIn))</td><td>\(rate(t.bytesIn, before?.bytesIn))</td><td>\(bytes(t.bytesOut))</td><td>\(rate(t.bytesOut, before?.bytesOut))</td>"
            html += "<td>\(t.errors)</td><td><small>\(sum.counters.map { "\(escape($0.0)) \($0.1)" }.joined(separator: " · "))</small></td></tr>\n"
        }
        previous = now
        html += "</table>\n<p><small>Rates are since the previous time this worker drew the page. The same figures for Prometheus: <a href=\"/metrics\">/metrics</a>.</small></p>\n</body></html>\n"
        return html
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func duration(ms: UInt64) -> String {
        let s = ms / 1000
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h" }
        return "\(s / 86400) d"
    }

    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var u = 0
        while value >= 1024 && u < units.count - 1 { value /= 1024; u += 1 }
        if u == 0 { return "\(n) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[u])"
    }
}
