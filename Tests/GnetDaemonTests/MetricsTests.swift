#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet
import GnetProcess
import Testing

/// The `metrics` service and the figures behind it: every service's traffic, the http service's
/// responses by class, refused requests and durations, read by real clients (curl, promtool,
/// headless Chromium) from a real gnetd.
@Suite(.serialized)
struct MetricsTests {
    static let config = """
    services:
      - name: web
        protocol: http
        listen: ["tcp://127.0.0.1:0"]
        routes:
          - { path: /, body: "hello" }
          - { path: /created, body: "made", status: 201 }
          - { path: /gone, body: "gone", status: 410 }
      - name: stats
        protocol: metrics
        listen: ["tcp://127.0.0.1:0"]
      - name: echo
        protocol: echo
        listen: ["udp://127.0.0.1:0"]

    """

    /// `curl URL` (status code checked by the caller through `-w`).
    static func curl(_ args: [String]) throws -> String {
        let p = try ChildProcess(["curl", "-sS", "--max-time", "10"] + args, discardStderr: true)
        let out = p.readAll(timeout: 20)
        guard p.wait(timeout: 20) == 0 else { throw TestError("curl \(args) failed") }
        return out
    }

    /// Samples of a Prometheus text page: (name, labels, value), comments skipped.
    static func samples(_ text: String) -> [(name: String, labels: [String: String], value: Double)] {
        text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return (name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { labels[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
            }
            return (name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    /// The sum of `name` over every sample whose labels include `matching`.
    static func total(_ text: String, _ name: String, _ matching: [String: String] = [:]) -> Double {
        samples(text).filter { sample in sample.name == name && matching.allSatisfy { k, v in sample.labels[k] == v } }.reduce(0) { $0 + $1.value }
    }

    @Test(.timeLimit(.minutes(2)))
    func countsEveryResponseByClassTheRefusedAndTheDurations() throws {
        let h = try DaemonHarness(config: Self.config, workers: 2)
        try h.start()
        let web = try h.addresses("web")[0], stats = try h.addresses("stats")[0], echo = try h.addresses("echo")[0]
        let url = "http://127.0.0.1:\(web.port)"
        // 20 + 3 + 4 requests on 3 kept-alive connections (curl reuses one per invocation).
        _ = try Self.curl(Array(repeating: url + "/", count: 20))
        _ = try Self.curl(Array(repeating: url + "/created", count: 3))
        _ = try Self.curl(Array(repeating: url + "/gone", count: 4))
        // Three requests the parser refuses, each on its own connection.
        for garbage in ["GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "GET / HTTP/9.9\r\n\r\n"] {
            let answer = try rawHTTP(web, garbage)
            #expect(answer.hasPrefix("HTTP/1.1 400") || answer.hasPrefix("HTTP/1.1 505"), "\(answer.prefix(40))")
        }
        // Five datagrams to the UDP echo service, each answered.
        let udp = socket(AF_INET, gnet_SOCK_DGRAM(), 0)
        defer { close(udp) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let target = try echo.resolve()
        #expect(target.withUnsafeSockaddr { connect(udp, $0, $1) } == 0)
        for i in 0..<5 {
            #expect(send(udp, "ping \(i)", 6, 0) == 6)
            var buf = [UInt8](repeating: 0, count: 64)
            #expect(recv(udp, &buf, buf.count, 0) == 6)
        }
        let page = try Self.curl(["http://127.0.0.1:\(stats.port)/metrics"])
        #expect(Self.total(page, "gnetd_http_responses_2xx", ["service": "web"]) == 23)
        #expect(Self.total(page, "gnetd_http_responses_4xx", ["service": "web"]) == 4 + 2)
        #expect(Self.total(page, "gnetd_http_responses_5xx", ["service": "web"]) == 1)
        #expect(Self.total(page, "gnetd_http_requests_refused", ["service": "web"]) == 3)
        let answered = ["1xx", "2xx", "3xx", "4xx", "5xx"].reduce(0.0) { $0 + Self.total(page, "gnetd_http_responses_\($1)", ["service": "web"]) }
        #expect(Self.total(page, "gnetd_http_request_duration_seconds_count", ["service": "web"]) == answered)
        #expect(Self.total(page, "gnetd_http_request_duration_seconds_bucket", ["service": "web", "le": "+Inf"]) == answered)
        #expect(Self.total(page, "gnetd_http_request_duration_seconds_sum", ["service": "web"]) > 0)
        #expect(Self.total(page, "gnetd_service_connections_accepted_total", ["service": "web"]) >= 3 + 3)
        #expect(Self.total(page, "gnetd_service_received_bytes_total", ["service": "web"]) > 27 * 16)
        #expect(Self.total(page, "gnetd_service_received_datagrams_total", ["service": "echo"]) == 5)
        #expect(Self.total(page, "gnetd_service_sent_datagrams_total", ["service": "echo"]) == 5)
        #expect(Self.total(page, "gnetd_service_received_datagrams_total", ["service": "web"]) == 0)
        #expect(Self.total(page, "gnetd_worker_state", ["state": "serving"]) == 2)
        #expect(Self.total(page, "gnetd_generation") == 1)
        // The page passes Prometheus' own checker.
        let dir = h.dir
        _ = try Self.curl(["-o", dir + "/metrics.txt", "http://127.0.0.1:\(stats.port)/metrics"])  // the bytes as served
        let promtool = try ChildProcess(["sh", "-c", "promtool check metrics < \(dir)/metrics.txt 2>&1"])
        let verdict = promtool.readAll(timeout: 30)
        #expect(promtool.wait(timeout: 30) == 0, "promtool: \(verdict)")
        // A reload: the new generation's workers are on the page, the count carries on per worker.
        #expect(try h.request("reload", timeout: 60)["ok"] as? Bool == true)
        let after = try Self.curl(["http://127.0.0.1:\(stats.port)/metrics"])
        #expect(Self.total(after, "gnetd_generation") == 2)
        #expect(Self.total(after, "gnetd_reloads_total", ["result": "ok"]) == 1)
        #expect(Self.total(after, "gnetd_worker_state", ["generation": "2", "state": "serving"]) == 2)
        #expect(h.stop() == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func theStatusPageRendersInChromium() throws {
        let h = try DaemonHarness(config: Self.config, workers: 2)
        try h.start()
        let web = try h.addresses("web")[0], stats = try h.addresses("stats")[0]
        _ = try Self.curl(Array(repeating: "http://127.0.0.1:\(web.port)/", count: 10))
        let html = try Self.curl(["http://127.0.0.1:\(stats.port)/"])
        #expect(html.contains("<h1>gnetd "))
        #expect(html.contains("<td>web</td><td>http</td>"))
        #expect(html.contains("http-equiv=\"refresh\""))
        // Rates appear from the second look on.
        _ = try Self.curl(Array(repeating: "http://127.0.0.1:\(web.port)/", count: 10))
        let shot = h.dir + "/status.png"
        let chromium = try ChildProcess(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                         "--hide-scrollbars", "--window-size=1100,600", "--screenshot=\(shot)", "http://127.0.0.1:\(stats.port)/"],
                                        discardStderr: true)
        _ = chromium.readAll(timeout: 60)
        #expect(chromium.wait(timeout: 60) == 0)
        let png = FileManager.default.contents(atPath: shot) ?? Data()
        #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "screenshot of \(png.count) bytes")
        // Kept for whoever reads the test output (the harness's directory goes with it).
        let kept = NSTemporaryDirectory() + "gnetd-status-page.png"
        try? FileManager.default.removeItem(atPath: kept)
        try FileManager.default.copyItem(atPath: shot, toPath: kept)
        print("status page screenshot: \(kept)")
        #expect(h.stop() == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func garbageToTheMetricsServiceEndsOnlyThatConnection() throws {
        let h = try DaemonHarness(config: Self.config, workers: 1)
        try h.start()
        let stats = try h.addresses("stats")[0]
        // A kept-alive client, open throughout.
        let keeper = try EchoClient(stats)
        defer { keeper.close() }
        func ask(_ c: EchoClient) -> String {
            let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            _ = send(c.fd, request, request.count, Int32(MSG_NOSIGNAL))
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            let n = recv(c.fd, &buf, buf.count, 0)
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
        }
        #expect(ask(keeper).hasPrefix("HTTP/1.1 200 OK"))
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let bytes = (0..<Int.random(in: 1...4096, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let c = try EchoClient(stats, timeout: 5)
            _ = send(c.fd, bytes + [13, 10, 13, 10], bytes.count + 4, Int32(MSG_NOSIGNAL))
            let answer = readUntilClosed(c.fd)
            #expect(answer.isEmpty || answer.hasPrefix("HTTP/1.1 4") || answer.hasPrefix("HTTP/1.1 5"))
            c.close()
        }
        let huge = try rawHTTP(stats, "GET /" + String(repeating: "a", count: 70_000) + " HTTP/1.1\r\n\r\n")
        #expect(huge.hasPrefix("HTTP/1.1 414") || huge.hasPrefix("HTTP/1.1 431"))
        #expect(try rawHTTP(stats, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi").hasPrefix("HTTP/1.1 405"))
        #expect(try rawHTTP(stats, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        #expect(ask(keeper).hasPrefix("HTTP/1.1 200 OK"))
        #expect(h.stop() == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func gnetctlShowsTheSameFiguresStatusDetailsAndRates() throws {
        let h = try DaemonHarness(config: Self.config, workers: 2)
        try h.start()
        let web = try h.addresses("web")[0]
        _ = try Self.curl(Array(repeating: "http://127.0.0.1:\(web.port)/", count: 5))
        // --prometheus: the metrics service's page, from the supervisor; promtool agrees.
        let (code, page) = try h.gnetctl(["-s", h.controlPath, "stats", "--prometheus"])
        #expect(code == 0)
        #expect(Self.total(page, "gnetd_http_responses_2xx", ["service": "web"]) == 5)
        let file = h.dir + "/gnetctl-metrics.txt"
        try (page + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let promtool = try ChildProcess(["sh", "-c", "promtool check metrics < \(file) 2>&1"])
        let verdict = promtool.readAll(timeout: 30)
        #expect(promtool.wait(timeout: 30) == 0, "promtool: \(verdict)")
        // stats: each service's traffic per worker and in total.
        let stats = try h.request("stats")
        let totals = stats["totals"] as? [String: Any] ?? [:]
        let traffic = totals["traffic"] as? [String: [String: Any]] ?? [:]
        #expect(traffic["web"]?["connections_accepted"] as? Int == 1)
        #expect(traffic["echo"]?["datagrams_in"] as? Int == 0)
        let table = try h.gnetctl(["-s", h.controlPath, "stats"]).1
        #expect(table.contains("service web: active 0  accepted 1"), "\(table)")
        // --watch: rates from the second table on.
        let watch = try ChildProcess(["timeout", "2.5", DaemonHarness.binDir + "/gnetctl", "-s", h.controlPath, "stats", "--watch", "1"], discardStderr: true)
        let watched = watch.readAll(timeout: 10)
        _ = watch.wait(timeout: 10)
        #expect(watched.components(separatedBy: "conn/s").count - 1 >= 1, "\(watched)")
        // status: every worker, and the last error of one that died.
        let victim = try h.workerPids()[0]
        kill(pid_t(victim), SIGKILL)
        var status = ""
        for _ in 0..<100 {
            status = try h.gnetctl(["-s", h.controlPath, "status"]).1
            let serving = try h.workerPids().count
            if status.contains("last error: worker") && serving == 2 { break }
            usleep(50_000)
        }
        #expect(status.contains("pid \(victim)") && status.contains("killed by signal 9"), "\(status)")
        #expect(status.contains("revision ") && status.contains("workers:\n  0  pid "), "\(status)")
        #expect(h.stop() == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func aTricklingHeadIsCutOffAtTheHeaderTimeout() throws {
        let h = try DaemonHarness(config: """
            services:
              - name: stats
                protocol: metrics
                listen: ["tcp://127.0.0.1:0"]
                header_timeout: 500ms

            """, workers: 1)
        try h.start()
        let stats = try h.addresses("stats")[0]
        let slow = try EchoClient(stats, timeout: 10)
        let begun = Date()
        for byte in Array("GET /metr".utf8) {
            _ = send(slow.fd, [byte], 1, Int32(MSG_NOSIGNAL))
            usleep(100_000)
        }
        let answer = readUntilClosed(slow.fd)
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(60))")
        let after = Date().timeIntervalSince(begun)
        #expect(after >= 0.4 && after < 5, "closed after \(after) s")
        // A prompt client is unaffected.
        #expect(try rawHTTP(stats, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        #expect(h.stop() == 0)
    }
}
