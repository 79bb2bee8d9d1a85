#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// What gnetctl does, as functions returning exit codes: 0 ok, 1 the operation failed (e.g. a
/// reload was rejected), 3 the daemon is unreachable. (2, bad usage, is the parser's.)
public enum GnetctlActions {
    public static let defaultSocket = "/run/gnet/control.sock"

    /// Writes a gnetctl error to standard error (at priority `err` when that is the journal).
    public static func reportError(_ text: String) { printError(text) }

    /// Prints stats as a table (or the daemon's JSON); with `watch`, again every `watch` seconds,
    /// each table with per-second rates since the one before.
    public static func stats(socket: String, json: Bool, watch: Double?) -> Int32 {
        var previous: (answer: JSONValue, at: Int64)? = nil
        while true {
            let code = once(socket: socket, command: "stats") { answer in
                let now = gnet_monotonic_ns()
                let since = previous.map { ($0.answer, Double(now - $0.at) / 1e9) }
                print(json ? raw(answer) : statsTable(answer, since: since))
                previous = (answer, now)
            }
            guard let every = watch, code == 0 else { return code }
            fflush(nil)
            usleep(UInt32(min(every, 3600) * 1e6))
            if !json { print("") }
        }
    }

    /// Prints the daemon's figures in the Prometheus text format (the `metrics` service's page).
    public static func metrics(socket: String) -> Int32 {
        once(socket: socket, command: "metrics") { answer in
            var text = answer["text"]?.string ?? ""
            if text.hasSuffix("\n") { text.removeLast() }
            print(text)
        }
    }

    public static func status(socket: String, json: Bool) -> Int32 {
        once(socket: socket, command: "status") { answer in
            if json { print(raw(answer)); return }
            let services = (answer["services"]?.array ?? []).map { s in
                "  \(show(s["name"])) (\(show(s["protocol"]))): \((s["listen"]?.array ?? []).map { show($0) }.joined(separator: ", "))"
            }
            print("\(show(answer["name"], "gnetd")) \(show(answer["version"])) (pid \(show(answer["pid"]))): \(show(answer["state"])), generation \(show(answer["generation"])), \(show(answer["workers"])) workers")
            print("config: \(show(answer["config"]))  revision \(show(answer["revision"]))  build \(show(answer["build"]))")
            let execs = answer["exec_count"]?.int ?? 0
            print("binary: \(show(answer["binary"]))" + (execs > 0 ? "  (re-executed \(execs) time\(execs == 1 ? "" : "s"))" : ""))
            if let e = answer["last_error"]?.string { print("last error: \(e)") }
            print("workers:")
            for w in answer["worker_details"]?.array ?? [] {
                var line = "  \(show(w["index"]))  pid \(show(w["pid"]))  generation \(show(w["generation"]))  \(show(w["state"]))  up \(show(w["uptime_s"]))s"
                if let build = w["build"]?.string { line += "  \(show(w["version"])) build \(build.prefix(12))" }
                if let e = w["last_error"]?.string { line += "\n     last error: \(e)" }
                print(line)
            }
            print("services:")
            print(services.joined(separator: "\n"))
        }
    }

    public static func reload(socket: String, json: Bool) -> Int32 {
        once(socket: socket, command: "reload", timeout: 120) { answer in
            print(json ? raw(answer) : "reloaded: generation \(show(answer["generation"])) serving with \(show(answer["workers"])) workers (\(show(answer["reload_ms"])) ms)")
        }
    }

    public static func stop(socket: String, json: Bool) -> Int32 {
        once(socket: socket, command: "stop", timeout: 3600) { answer in
            print(json ? raw(answer) : "stopped")
        }
    }

    private static func once(socket: String, command: String, timeout: Double = 30, _ show: (JSONValue) -> Void) -> Int32 {
        do {
            let answer = try ControlClient.request(socket: socket, command: command, timeout: timeout)
            guard answer["ok"]?.bool == true else {
                printError("gnetctl: \(answer["error"]?.string ?? "gnetd refused the request")")
                return 1
            }
            show(answer)
            return 0
        } catch {
            printError("gnetctl: \(error)")
            if case .unreachable = error { return 3 }
            return 1
        }
    }

    static func raw(_ answer: JSONValue) -> String { answer.encoded }

    /// A value of the answer as the tables show it; `missing` when it is absent.
    static func show(_ value: JSONValue?, _ missing: String = "?") -> String { value?.text ?? missing }

    /// A table a person reads at a glance: one row per worker, then the totals; with the answer
    /// before it and the seconds between them, per-second rates of accepted connections and bytes.
    static func statsTable(_ answer: JSONValue, since: (JSONValue, Double)? = nil) -> String {
        let sup = answer["supervisor"] ?? [:]
        var out = "\(show(sup["name"], "gnetd")) \(show(sup["version"])) pid \(show(sup["pid"]))  generation \(show(sup["generation"]))  up \(show(sup["uptime_s"]))s  "
        out += "reloads \(show(sup["reloads_ok"], "0")) ok / \(show(sup["reloads_failed"], "0")) failed  respawns \(show(sup["respawns"], "0"))\n"
        if let e = sup["last_error"]?.string { out += "last error: \(e)\n" }
        var header = ["worker", "pid", "gen", "state", "active", "accepted", "closed", "rejected", "bytes in", "bytes out", "errors"]
        let rated = ["connections_accepted", "bytes_in", "bytes_out"]
        if since != nil { header += ["conn/s", "in/s", "out/s"] }
        // Per-second rates of `rated` since the answer before (same worker pid, or the totals).
        func rates(_ now: JSONValue, _ before: JSONValue?) -> [String] {
            guard let (_, seconds) = since else { return [] }
            return rated.enumerated().map { i, key in
                guard let b = before?[key]?.double, let a = now[key]?.double, a >= b, seconds > 0 else { return "–" }
                let r = (a - b) / seconds
                return i == 0 ? String(Int(r.rounded())) : human(.double(r))
            }
        }
        let earlier = since?.0["workers"]?.array ?? []
        var rows: [[String]] = [header]
        for w in answer["workers"]?.array ?? [] {
            rows.append([show(w["index"], ""), show(w["pid"], ""), show(w["generation"], ""), show(w["state"], ""),
                         show(w["connections_active"], "0"), show(w["connections_accepted"], "0"), show(w["connections_closed"], "0"),
                         show(w["connections_rejected"], "0"), human(w["bytes_in"]), human(w["bytes_out"]), show(w["errors"], "0")]
                        + rates(w, earlier.first { $0["pid"] == w["pid"] }))
        }
        let t = answer["totals"] ?? [:]
        rows.append(["total", "", "", "", show(t["connections_active"], "0"), show(t["connections_accepted"], "0"), "",
                     show(t["connections_rejected"], "0"), human(t["bytes_in"]), human(t["bytes_out"]), ""] + rates(t, since?.0["totals"]))
        var widths = [Int](repeating: 0, count: header.count)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        for r in rows {
            out += r.enumerated().map { i, cell in
                i < 4 ? cell + String(repeating: " ", count: widths[i] - cell.count)
                      : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ") + "\n"
        }
        // Each service's traffic and counters, over every worker (those that have exited included).
        let services = t["services"]?.object ?? [:]
        let traffic = t["traffic"]?.object ?? [:]
        for name in Set(services.keys).union(traffic.keys).sorted() {
            var line = "service \(name):"
            if let f = traffic[name] {
                line += " active \(show(f["connections_active"], "0"))  accepted \(show(f["connections_accepted"], "0"))"
                line += "  rejected \(show(f["connections_rejected"], "0"))  in \(human(f["bytes_in"]))  out \(human(f["bytes_out"]))"
                if f["datagrams_in"]?.double ?? 0 > 0 || f["datagrams_out"]?.double ?? 0 > 0 {
                    line += "  datagrams \(show(f["datagrams_in"], "0")) in / \(show(f["datagrams_out"], "0")) out"
                }
                line += "  errors \(show(f["errors"], "0"))"
            }
            let counters = services[name]?.object ?? [:]
            if !counters.isEmpty {
                line += (traffic[name] == nil ? " " : ";  ") + counters.keys.sorted().map { "\($0) \(show(counters[$0], "0"))" }.joined(separator: "  ")
            }
            out += line + "\n"
        }
        return String(out.dropLast())
    }

    /// A byte count with a binary unit and one decimal: "512 B", "1.5 KiB", "3.2 GiB".
    static func human(_ value: JSONValue?) -> String {
        let v = value?.double ?? 0
        let gib = 1073741824.0, mib = 1048576.0, kib = 1024.0
        if v >= gib { return "\((v / gib).oneDecimal) GiB" }
        if v >= mib { return "\((v / mib).oneDecimal) MiB" }
        if v >= kib { return "\((v / kib).oneDecimal) KiB" }
        return "\(Int(v)) B"
    }
}
