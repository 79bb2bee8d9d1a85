#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gnet
import GnetDaemon
import GnetProcess
import Testing

/// What `gnetd --check` accepts starts and serves: for every numeric key, the values at and
/// past the edges of its documented range (and the classic troublemakers: negative, fractional,
/// Int64.max, absurd units) are either refused with a file:line:column location, or run a real
/// gnetd whose services answer.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConfigRangeTests {
    /// A configuration that uses `key` with the value text `value`, and how to see its service answer.
    static func config(for key: String, _ value: String) -> (text: String, probe: Probe) {
        let echo = "  - name: s\n    protocol: echo\n    listen: [\"tcp://127.0.0.1:0\"]\n"
        func service(_ body: String) -> String { "services:\n" + body }
        switch key {
        case "workers": return ("workers: \(value)\n" + service(echo), .echo)
        case "drain_timeout": return ("drain_timeout: \(value)\n" + service(echo), .echo)
        case "drain_idle_grace": return ("drain_idle_grace: \(value)\n" + service("  - name: s\n    protocol: http\n    listen: [\"tcp://127.0.0.1:0\"]\n    routes: [{path: /, body: ok}]\n"), .http)
        case "worker_stall_timeout": return ("worker_stall_timeout: \(value)\n" + service(echo), .echo)
        case "control.idle_timeout": return ("control:\n  idle_timeout: \(value)\n" + service(echo), .echo)
        case "services[].read_buffer_cap", "services[].write_buffer_cap", "services[].idle_timeout", "services[].max_connections":
            let name = key.split(separator: ".").last!
            return (service(echo + "    \(name): \(value)\n"), .echo)
        case "services[].interval":
            return (service("  - name: s\n    protocol: push\n    listen: [\"tcp://127.0.0.1:0\"]\n    interval: \(value)\n"), .push)
        case "services[].header_timeout", "services[].keepalive_timeout", "services[].send_timeout", "services[].max_body_size",
             "services[].file_cache_valid":
            let name = key.split(separator: ".").last!
            return (service("  - name: s\n    protocol: http\n    listen: [\"tcp://127.0.0.1:0\"]\n    \(name): \(value)\n    routes: [{path: /, body: ok}]\n"), .http)
        case "services[].routes[].status":
            return (service("  - name: s\n    protocol: http\n    listen: [\"tcp://127.0.0.1:0\"]\n    routes: [{path: /, body: ok, status: \(value)}]\n"), .http)
        default:
            // codec keys
            let name = key.split(separator: ".").last!
            let codec: String
            switch name {
            case "delimiter": codec = "{type: delimiter, delimiter: \(value)}"
            case "frame_length": codec = "{type: fixed-length, frame_length: \(value), max_frame_length: 1GiB}"
            case "max_frame_length": codec = "{type: line, max_frame_length: \(value)}"
            default: codec = "{type: length-field, \(name): \(value), max_frame_length: 1GiB}"
            }
            return (service("  - name: s\n    protocol: framed\n    listen: [\"tcp://127.0.0.1:0\"]\n    codec: \(codec)\n"), .connects)
        }
    }

    /// How a running service shows it serves.
    enum Probe { case echo, http, push, connects }

    /// The values tried for a key: its edges and one step past them (in its own unit), zero,
    /// one, minus one, Int64.max, a fraction, and a unit far too large.
    static func values(_ r: NumericRange) -> [String] {
        func text(_ v: Int64) -> String {
            switch r.unit {
            case .duration: return "\(v)ms"
            case .size, .count: return "\(v)"
            }
        }
        var out = [r.range.lowerBound, r.range.upperBound, 0, 1, -1].map(text)
        if r.range.lowerBound > Int64.min { out.append(text(r.range.lowerBound - 1)) }
        if r.range.upperBound < Int64.max { out.append(text(r.range.upperBound + 1)) }
        out += ["9223372036854775807", "-9223372036854775808", "1.5", "99999999999999999999"]
        switch r.unit {
        case .duration: out += ["9223372036854775807ms", "99999999999h", "1.5s", "-1s"]
        case .size: out += ["1024GiB", "99999999999GiB", "1.5KiB", "-1KiB"]
        case .count: out += ["1e3", "0x10"]
        }
        return Array(Set(out)).sorted()
    }

    @Test func everyNumericKeyIsRefusedWithALocationOrServes() throws {
        var accepted: [(key: String, value: String, text: String, probe: Probe)] = []
        var refused = 0
        for r in ConfigRanges.all {
            for value in Self.values(r) {
                let (text, probe) = Self.config(for: r.key, value)
                do {
                    _ = try ConfigLoader.parse(text, file: "t.yaml")
                    accepted.append((r.key, value, text, probe))
                } catch {
                    refused += 1
                    #expect(error.line != nil && error.column != nil, "\(r.key) = \(value): refused without a location: \(error)")
                    #expect(error.description.hasPrefix("t.yaml:"), "\(error)")
                }
            }
        }
        print("figure: numeric config keys: \(ConfigRanges.all.count) keys, \(refused) values refused with a location, \(accepted.count) accepted and run")
        // Every key accepts its documented edges.
        for r in ConfigRanges.all {
            let ends = [r.range.lowerBound, r.range.upperBound].map { r.unit == .duration ? "\($0)ms" : "\($0)" }
            for e in ends { #expect(accepted.contains { $0.key == r.key && $0.value == e }, "\(r.key) refuses its own bound \(e)") }
        }
        // What is accepted runs: one real gnetd per accepted value, its service answering.
        for a in accepted {
            try Self.run(a.text, probe: a.probe, what: "\(a.key) = \(a.value)")
        }
    }

    /// Starts gnetd on `text` and checks its service answers; then stops it.
    static func run(_ text: String, probe: Probe, what: String) throws {
        let h = try DaemonHarness(config: "")
        try h.write(raw: text)
        do {
            try h.start()
        } catch {
            Issue.record("\(what): accepted by the loader but gnetd did not start: \(error)")
            return
        }
        defer { #expect(h.stop() == 0, "\(what): gnetd stops cleanly") }
        let address = try h.addresses("s")[0]
        switch probe {
        case .echo:
            #expect((try? EchoClient(address, timeout: 5).echo("ping")) != nil, "\(what): the echo service answers")
        case .http:
            let answer = (try? rawHTTP(address, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) ?? ""
            #expect(answer.hasPrefix("HTTP/1.1 "), "\(what): the http service answers: \(answer.prefix(60))")
        case .push, .connects:
            // A push with a long interval or a framed service says nothing first: it must accept
            // the connection and keep it open.
            let c = try? EchoClient(address, timeout: 1)
            #expect(c != nil, "\(what): the service accepts connections")
            if let c {
                var b = [UInt8](repeating: 0, count: 16)
                let n = recv(c.fd, &b, 16, Int32(MSG_DONTWAIT))
                #expect(n > 0 || (n < 0 && errno == EAGAIN), "\(what): the connection stays open")
            }
        }
        #expect(try h.workerPids().count == h.workers().count, "\(what): every worker serves")
    }

    @Test func checkRefusesAnOverflowAndAReloadWithItChangesNothing() throws {
        let h = try DaemonHarness(config: "")
        let framed = "services:\n  - name: s\n    protocol: framed\n    listen: [\"tcp://127.0.0.1:0\"]\n    codec: {type: length-field, length_field_length: 4}\n"
        try h.write(config: framed)
        try h.start()
        let pids = try h.workerPids()
        try h.write(config: framed.replacingOccurrences(of: "length_field_length: 4", with: "length_field_offset: 9223372036854775807"))
        let check = try ChildProcess([DaemonHarness.binDir + "/gnetd", "--check", "--config", h.configPath], discardStderr: true)
        #expect(check.wait(timeout: 30) == 2, "--check refuses it (exit 2), it does not trap")
        let answer = try h.request("reload")
        #expect(answer["ok"] as? Bool == false)
        #expect((answer["error"] as? String ?? "").contains("length_field_offset: must be 0 to 65535"), "\(answer)")
        #expect(try h.workerPids() == pids, "the running workers carry on")
        // A client's frame against the widest adjustment allowed: refused or echoed, never a crash.
        try h.write(config: framed.replacingOccurrences(of: "length_field_length: 4", with: "length_field_length: 4, length_adjustment: 1073741824"))
        #expect(try h.request("reload")["ok"] as? Bool == true)
        let address = try h.addresses("s")[0]
        // Once the old generation has drained away: the new one's workers.
        #expect(eventually { (try? h.workers())?.count == 2 })
        let served = try h.workerPids()
        for _ in 0..<4 {
            let c = try EchoClient(address, timeout: 5)
            let frame: [UInt8] = [0, 0, 0, 5] + Array("hello".utf8)
            _ = send(c.fd, frame, frame.count, Int32(MSG_NOSIGNAL))
            _ = readUntilClosed(c.fd)  // closed as a frame over the maximum
        }
        #expect(try h.workerPids() == served, "no worker died")
        #expect((try h.request("stats")["supervisor"] as? [String: Any])?["respawns"] as? Int == 0)
        #expect(h.stop() == 0)
    }
}
