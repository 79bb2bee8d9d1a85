#if canImport(Glibc)
import Glibc
#endif
import Foundation

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
            let services = (answer["services"] as? [[String: Any]] ?? []).map { s in
                "  \(s["name"] ?? "?") (\(s["protocol"] ?? "?")): \((s["listen"] as? [String] ?? []).joined(separator: ", "))"
            }
            print("\(answer["name"] ?? "gnetd") \(answer["version"] ?? "?") (pid \(answer["pid"] ?? "?")): \(answer["state"] ?? "?"), generation \(answer["generation"] ?? "?"), \(answer["workers"] ?? "?") workers")
            print("config: \(answer["config"] ?? "?")")
            print(services.joined(separator: "\n"))
        }
    }

    public static func reload(socket: String, json: Bool) -> Int32 {
        once(socket: socket, command: "reload", timeout: 120) { answer in
            print(json ? raw(answer) : "reloaded: generation \(answer["generation"] ?? "?") serving with \(answer["workers"] ?? "?") workers (\(answer["reload_ms"] ?? "?") ms)")
        }
    }

    public static func stop(socket: String, json: Bool) -> Int32 {
        once(socket: socket, command: "stop", timeout: 3600) { answer in
            print(json ? raw(answer) : "stopped")
        }
    }

    private static func once(socket: String, command: String, timeout: Double = 30, _ show: ([String: Any]) -> Void) -> Int32 {
        do {
            let answer = try ControlClient.request(socket: socket, command: command, timeout: timeout)
            guard answer["ok"] as? Bool == true else {
                printError("gnetctl: \(answer["error"] as? String ?? "gnetd refused the request")")
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

    static func raw(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A table a person reads at a glance: one row per worker, then the totals.
    static func statsTable(_ answer: [String: Any]) -> String {
        let sup = answer["supervisor"] as? [String: Any] ?? [:]
        var out = "\(sup["name"] ?? "gnetd") \(sup["version"] ?? "?") pid \(sup["pid"] ?? "?")  generation \(sup["generation"] ?? "?")  up \(sup["uptime_s"] ?? "?")s  "
        out += "reloads \(sup["reloads_ok"] ?? 0) ok / \(sup["reloads_failed"] ?? 0) failed  respawns \(sup["respawns"] ?? 0)\n"
        if let e = sup["last_error"] as? String { out += "last error: \(e)\n" }
        let header = ["worker", "pid", "gen", "state", "active", "accepted", "closed", "rejected", "bytes in", "bytes out", "errors"]
        var rows: [[String]] = [header]
        for w in answer["workers"] as? [[String: Any]] ?? [] {
            rows.append(["\(w["index"] ?? "")", "\(w["pid"] ?? "")", "\(w["generation"] ?? "")", "\(w["state"] ?? "")",
                         "\(w["connections_active"] ?? 0)", "\(w["connections_accepted"] ?? 0)", "\(w["connections_closed"] ?? 0)",
                         "\(w["connections_rejected"] ?? 0)", human(w["bytes_in"]), human(w["bytes_out"]), "\(w["errors"] ?? 0)"])
        }
        let t = answer["totals"] as? [String: Any] ?? [:]
        rows.append(["total", "", "", "", "\(t["connections_active"] ?? 0)", "\(t["connections_accepted"] ?? 0)", "",
                     "\(t["connections_rejected"] ?? 0)", human(t["bytes_in"]), human(t["bytes_out"]), ""])
        var widths = [Int](repeating: 0, count: header.count)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        for r in rows {
            out += r.enumerated().map { i, cell in
                i < 4 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                      : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ") + "\n"
        }
        // Each service's counters, over every worker (those that have exited included).
        let services = t["services"] as? [String: [String: Any]] ?? [:]
        for name in services.keys.sorted() {
            let counters = services[name] ?? [:]
            guard !counters.isEmpty else { continue }
            out += "service \(name): " + counters.keys.sorted().map { "\($0) \(counters[$0] ?? 0)" }.joined(separator: "  ") + "\n"
        }
        return String(out.dropLast())
    }

    static func human(_ value: Any?) -> String {
        let v = (value as? NSNumber)?.doubleValue ?? 0
        let gib = 1073741824.0, mib = 1048576.0, kib = 1024.0
        if v >= gib { return String(format: "%.1f GiB", v / gib) }
        if v >= mib { return String(format: "%.1f MiB", v / mib) }
        if v >= kib { return String(format: "%.1f KiB", v / kib) }
        return "\(Int(v)) B"
    }
}
