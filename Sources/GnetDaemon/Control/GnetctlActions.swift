#if canImport(Glibc)
import Glibc
#endif

/// What gnetctl does, as functions returning exit codes: 0 ok, 1 the operation failed (e.g. a
/// reload was rejected), 3 the daemon is unreachable. (2, bad usage, is the parser's.)
public enum GnetctlActions {
    public static let defaultSocket = "/run/gnet/control.sock"

    /// Prints stats as a table (or the daemon's JSON); with `watch`, again every `watch` seconds.
    public static func stats(socket: String, json: Bool, watch: Double?) -> Int32 {
        while true {
            let code = once(socket: socket, command: "stats") { answer in
                print(json ? raw(answer) : statsTable(answer))
            }
            guard let every = watch, code == 0 else { return code }
            fflush(nil)
            usleep(UInt32(min(every, 3600) * 1e6))
            if !json { print("") }
        }
    }

    public static func status(socket: String, json: Bool) -> Int32 {
        once(socket: socket, command: "status") { answer in
            if json { print(raw(answer)); return }
            let services = (answer["services"]?.array ?? []).map { s in
                "  \(show(s["name"])) (\(show(s["protocol"]))): \((s["listen"]?.array ?? []).map { show($0) }.joined(separator: ", "))"
            }
            print("\(show(answer["name"], "gnetd")) \(show(answer["version"])) (pid \(show(answer["pid"]))): \(show(answer["state"])), generation \(show(answer["generation"])), \(show(answer["workers"])) workers")
            print("config: \(show(answer["config"]))")
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

    /// A table a person reads at a glance: one row per worker, then the totals.
    static func statsTable(_ answer: JSONValue) -> String {
        let sup = answer["supervisor"] ?? [:]
        var out = "\(show(sup["name"], "gnetd")) \(show(sup["version"])) pid \(show(sup["pid"]))  generation \(show(sup["generation"]))  up \(show(sup["uptime_s"]))s  "
        out += "reloads \(show(sup["reloads_ok"], "0")) ok / \(show(sup["reloads_failed"], "0")) failed  respawns \(show(sup["respawns"], "0"))\n"
        if let e = sup["last_error"]?.string { out += "last error: \(e)\n" }
        let header = ["worker", "pid", "gen", "state", "active", "accepted", "closed", "rejected", "bytes in", "bytes out", "errors"]
        var rows: [[String]] = [header]
        for w in answer["workers"]?.array ?? [] {
            rows.append([show(w["index"], ""), show(w["pid"], ""), show(w["generation"], ""), show(w["state"], ""),
                         show(w["connections_active"], "0"), show(w["connections_accepted"], "0"), show(w["connections_closed"], "0"),
                         show(w["connections_rejected"], "0"), human(w["bytes_in"]), human(w["bytes_out"]), show(w["errors"], "0")])
        }
        let t = answer["totals"] ?? [:]
        rows.append(["total", "", "", "", show(t["connections_active"], "0"), show(t["connections_accepted"], "0"), "",
                     show(t["connections_rejected"], "0"), human(t["bytes_in"]), human(t["bytes_out"]), ""])
        var widths = [Int](repeating: 0, count: header.count)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        for r in rows {
            out += r.enumerated().map { i, cell in
                i < 4 ? cell + String(repeating: " ", count: widths[i] - cell.count)
                      : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ") + "\n"
        }
        // Each service's counters, over every worker (those that have exited included).
        let services = t["services"]?.object ?? [:]
        for name in services.keys.sorted() {
            let counters = services[name]?.object ?? [:]
            guard !counters.isEmpty else { continue }
            out += "service \(name): " + counters.keys.sorted().map { "\($0) \(show(counters[$0], "0"))" }.joined(separator: "  ") + "\n"
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
