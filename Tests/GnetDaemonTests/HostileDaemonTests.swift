#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet
import GnetDaemon
import GnetProcess
import Testing

/// gnetd against a hostile client and a careless or hostile operator: one test per class of
/// failure that once wedged, crashed or mis-answered it. Each fails on the code before its fix.
@Suite(.serialized, .timeLimit(.minutes(3))) struct HostileDaemonTests {
    /// An http service with a file route under the harness's directory, one worker.
    static func webConfig(_ h: DaemonHarness, headerTimeout: String = "300ms", extra: String = "") -> String {
        """
        services:
          - name: web
            protocol: http
            listen: ["tcp://127.0.0.1:0"]
            header_timeout: \(headerTimeout)
        \(extra)    routes:
              - { path: /static/, root: \(h.dir)/www }
              - { path: /big, body: "\(String(repeating: "B", count: 4000))" }
              - { path: /, body: "Hello" }

        """
    }

    static func makeWebRoot(_ h: DaemonHarness) throws -> String {
        let www = h.dir + "/www"
        mkdir(www, 0o755)
        return www
    }

    /// Writes `size` bytes of a known pattern to `path`.
    static func writeFile(_ path: String, size: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestError("cannot create \(path)") }
        defer { close(fd) }
        let block = [UInt8]((0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var left = size
        while left > 0 {
            let n = min(left, block.count)
            guard block.withUnsafeBytes({ write(fd, $0.baseAddress, n) }) == n else { throw TestError("short write to \(path)") }
            left -= n
        }
    }

    /// A TCP client whose receive buffer is set before it connects (so the window stays small).
    static func smallWindowClient(_ address: NetworkAddress, receiveBuffer: Int32, timeout: Int = 10) throws -> Int32 {
        let target = try address.resolve()
        let fd = socket(target.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard target.withUnsafeSockaddr({ connect(fd, $0, $1) }) == 0 else {
            close(fd)
            throw SystemError("connect", errno: errno)
        }
        return fd
    }

    /// Everything the peer sends on `fd` until it closes; whether it closed (rather than the
    /// receive timeout passing).
    static func readToEnd(_ fd: Int32) -> (bytes: [UInt8], sawEOF: Bool) {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return (bytes, true) }
            if n < 0 { return (bytes, false) }
            bytes += buf[0..<n]
        }
    }

    /// Sends `request` as a client that writes everything at once and starts reading only
    /// after `pause` µs: it sends what the socket takes, waits, then writes the rest as the
    /// server takes it while reading everything until the server closes (within `seconds`).
    static func sendAllThenReadLate(_ fd: Int32, _ request: [UInt8], pause: UInt32, seconds: Double = 30) -> (bytes: [UInt8], sawEOF: Bool) {
        var sent = 0
        func sendSome() {
            while sent < request.count {
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n <= 0 { return }
                sent += n
            }
        }
        sendSome()
        usleep(pause)
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        let deadline = gnet_monotonic_ns() + Int64(seconds * 1e9)
        while gnet_monotonic_ns() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (sent < request.count ? Int16(POLLOUT) : 0), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            if pfd.revents & Int16(POLLOUT) != 0 { sendSome() }
            if pfd.revents & (Int16(POLLIN) | Int16(POLLHUP)) != 0 {
                let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
                if n == 0 { return (bytes, true) }
                if n > 0 { bytes += buf[0..<n] }
            }
        }
        return (bytes, false)
    }

    /// gnetd with one worker serving `webConfig` (and a file of `size` bytes named `file` under
    /// its root); the harness, the service's address and the root.
    static func webDaemon(file: String? = nil, size: Int = 0, headerTimeout: String = "300ms", extra: String = "",
                          captureLog: Bool = false) throws -> (DaemonHarness, NetworkAddress, String) {
        let h = try DaemonHarness(config: "")
        let www = try makeWebRoot(h)
        if let file { try writeFile(www + "/" + file, size: size) }
        try h.write(config: webConfig(h, headerTimeout: headerTimeout, extra: extra), workers: 1)
        try h.start(captureLog: captureLog)
        return (h, try h.addresses("web")[0], www)
    }

    /// GET `path` on a fresh connection (Connection: close); the status code and body.
    static func get(_ address: NetworkAddress, _ path: String, timeout: Int = 3) throws -> (Int, String) {
        let text = try rawHTTP(address, "GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout: timeout)
        guard text.hasPrefix("HTTP/1.1 "), let code = Int(text.dropFirst(9).prefix(3)) else { throw TestError("no answer to GET \(path): \(text.prefix(100))") }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (code, body)
    }

    @Test func aSlowDownloadPastTheHeaderTimeoutNeitherWedgesNorSpinsTheWorker() throws {
        let (h, address, _) = try Self.webDaemon(file: "big.bin", size: 8 << 20)
        let worker = try #require(try h.workerPids().first)
        let fd = try Self.smallWindowClient(address, receiveBuffer: 16384)
        defer { close(fd) }
        let request = Array("GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        #expect(send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count)
        let cpuBefore = ProcFS.cpuNanoseconds(pid_t(worker))
        var received = 0
        var buf = [UInt8](repeating: 0, count: 16384)
        let begin = gnet_monotonic_ns()
        var servedMeanwhile = false
        // 16 KiB every 50 ms for 1.5 s: five header timeouts, a slow reader that keeps reading.
        while gnet_monotonic_ns() - begin < 1_500_000_000 {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            received += n
            if !servedMeanwhile && gnet_monotonic_ns() - begin > 800_000_000 {
                servedMeanwhile = (try? Self.get(address, "/"))?.0 == 200
            }
            usleep(50_000)
        }
        let cpu = Double(ProcFS.cpuNanoseconds(pid_t(worker)) - cpuBefore) / 1e9
        #expect(received > 100_000, "the slow reader kept receiving: \(received) bytes")
        #expect(servedMeanwhile, "another client was served while the slow download went on")
        #expect(cpu < 0.5, "the worker used \(cpu) s of CPU in 1.5 s of slow download: spinning")
        close(fd)
        // And after the slow client has gone.
        #expect(try Self.get(address, "/").0 == 200)
        #expect(try h.workerPids() == [worker], "the same worker serves")
        #expect(h.stop() == 0)
    }

    @Test func aFIFOOrSocketOrLinkOutUnderTheRootIsRefusedWithoutBlocking() throws {
        let h = try DaemonHarness(config: "")
        let www = try Self.makeWebRoot(h)
        try Self.writeFile(www + "/ok.txt", size: 10)
        #expect(mkfifo(www + "/fifo", 0o644) == 0)
        let unix = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(unix) }
        #expect(try SocketAddress.unix(www + "/sock").map { a in a.withUnsafeSockaddr { bind(unix, $0, $1) } } == 0)
        #expect(symlink("/etc/passwd", www + "/passwd") == 0)
        #expect(symlink("/dev/zero", www + "/zero") == 0)
        #expect(symlink("../../..", www + "/up") == 0)
        try h.write(config: Self.webConfig(h), workers: 1)
        try h.start()
        let address = try h.addresses("web")[0]
        let begin = gnet_monotonic_ns()
        for path in ["/static/fifo", "/static/sock", "/static/passwd", "/static/zero", "/static/up/etc/passwd", "/static/fifo"] {
            let (status, _) = try Self.get(address, path)
            #expect(status == 403 || status == 404, "\(path): \(status)")
        }
        #expect(gnet_monotonic_ns() - begin < 3_000_000_000, "refusals are immediate")
        let (status, body) = try Self.get(address, "/static/ok.txt")
        #expect(status == 200 && body.utf8.count == 10)
        #expect(h.stop() == 0)
    }

    /// Every response in `bytes`, parsed by Content-Length: status and body.
    static func responses(_ bytes: [UInt8]) -> [(status: Int, body: [UInt8])] {
        var out: [(Int, [UInt8])] = []
        var i = 0
        let crlf2: [UInt8] = [13, 10, 13, 10]
        while i < bytes.count {
            guard let end = bytes[i...].firstRange(of: crlf2) else { break }
            let head = String(decoding: bytes[i..<end.lowerBound], as: UTF8.self)
            guard let status = Int(head.dropFirst(9).prefix(3)) else { break }
            let length = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyEnd = end.upperBound + length
            guard bodyEnd <= bytes.count else { break }
            out.append((status, Array(bytes[end.upperBound..<bodyEnd])))
            i = bodyEnd
        }
        return out
    }

    @Test func tenThousandPipelinedRequestsGetEveryAnswerInOrderWhenTheClientReadsLate() throws {
        let (h, address, _) = try Self.webDaemon(headerTimeout: "30s", extra: "    keepalive_timeout: 30s\n")
        // A mix of large and small answers, in an order no pattern predicts.
        var x: UInt64 = 0x9E3779B97F4A7C15
        let paths: [String] = (0..<10_000).map { i in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return i == 9_999 ? "/" : (x % 3 == 0 ? "/" : "/big")
        }
        var text = ""
        for (i, p) in paths.enumerated() {
            text += "GET \(p) HTTP/1.1\r\nHost: t\r\n" + (i == paths.count - 1 ? "Connection: close\r\n" : "") + "\r\n"
        }
        let fd = try Self.smallWindowClient(address, receiveBuffer: 65536, timeout: 30)
        defer { close(fd) }
        // The server's output fills up while the client is not reading: it must wait, not drop.
        let (all, closed) = Self.sendAllThenReadLate(fd, Array(text.utf8), pause: 1_000_000)
        #expect(closed)
        let answers = Self.responses(all)
        #expect(answers.count == paths.count, "\(answers.count) answers to \(paths.count) requests")
        let big = Array(String(repeating: "B", count: 4000).utf8), small = Array("Hello".utf8)
        for (i, a) in answers.enumerated() where a.status != 200 || a.body != (paths[i] == "/big" ? big : small) {
            Issue.record("answer \(i) to \(paths[i]) is \(a.status) with \(a.body.count) bytes")
            break
        }
        #expect(h.stop() == 0)
    }

    @Test func aPipelined100ContinueThatFillsTheOutputDoesNotCostAnAnswer() throws {
        let (h, address, _) = try Self.webDaemon(headerTimeout: "30s", extra: "    write_buffer_cap: 4KiB\n")
        // Big answers, then a request whose interim 100 Continue goes out between its head and
        // its answer and fills the output: its answer must wait for room, not be dropped.
        let group = String(repeating: "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", count: 3)
            + "PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz"
        let rounds = 800  // 9.6 MB of answers: more than the socket buffers take (tcp_wmem goes to 4 MiB)
        let request = Array((String(repeating: group, count: rounds) + "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").utf8)
        let fd = try Self.smallWindowClient(address, receiveBuffer: 16384, timeout: 20)
        defer { close(fd) }
        let (bytes, closed) = Self.sendAllThenReadLate(fd, request, pause: 500_000)
        #expect(closed)
        let answers = Self.responses(bytes).filter { $0.status != 100 }
        let expected = (0..<rounds).flatMap { _ in [4000, 4000, 4000, 5] } + [5]
        let got = answers.map(\.body.count)
        #expect(got.count == expected.count, "\(got.count) answers to \(expected.count) requests")
        if let i = zip(got, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("answer \(i) has \(got[i]) bytes where \(expected[i]) are owed")
        }
        #expect(h.stop() == 0)
    }

    @Test func pipelinedFilesToAHalfClosedClientAreAllSent() throws {
        let (h, address, _) = try Self.webDaemon(file: "f.bin", size: 256 << 10)
        let fd = try Self.smallWindowClient(address, receiveBuffer: 65536, timeout: 10)
        defer { close(fd) }
        // Twenty requests for a file larger than the socket buffers, then the client's FIN: the
        // server reads the end of the stream while the first file is still on its way.
        let requests = Array(String(repeating: "GET /static/f.bin HTTP/1.1\r\nHost: t\r\n\r\n", count: 20).utf8)
        #expect(send(fd, requests, requests.count, Int32(MSG_NOSIGNAL)) == requests.count)
        shutdown(fd, Int32(SHUT_WR))
        let (bytes, sawEOF) = Self.readToEnd(fd)
        #expect(sawEOF, "the server closes after the last answer (received \(bytes.count) bytes)")
        let answers = Self.responses(bytes)
        #expect(answers.count == 20 && answers.allSatisfy { $0.status == 200 && $0.body.count == 256 << 10 }, "\(answers.count) whole answers of 20")
        #expect(h.stop() == 0)
    }

    @Test func cachedFilesFollowTheirFilesWithinTheValidityTime() throws {
        let h = try DaemonHarness(config: "")
        let www = try Self.makeWebRoot(h)
        func put(_ name: String, _ text: String) throws {
            let tmp = www + "/.tmp"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            _ = text.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            guard rename(tmp, www + "/" + name) == 0 else { throw TestError("rename") }
        }
        try put("a.txt", "first version")
        try h.write(config: Self.webConfig(h, extra: "    file_cache_valid: 200ms\n"), workers: 1)
        try h.start()
        let address = try h.addresses("web")[0]
        #expect(try Self.get(address, "/static/a.txt") == (200, "first version"))
        #expect(try Self.get(address, "/static/a.txt") == (200, "first version"))  // from memory
        // Replaced (same size), rewritten in place, removed, swapped for a link out of the root:
        // each is seen once the validity time has passed.
        try put("a.txt", "other version")
        #expect(eventually(seconds: 2) { (try? Self.get(address, "/static/a.txt"))?.1 == "other version" })
        let fd = open(www + "/a.txt", O_WRONLY | O_CLOEXEC)
        _ = "OTHER".withCString { pwrite(fd, $0, 5, 0) }
        close(fd)
        #expect(eventually(seconds: 2) { (try? Self.get(address, "/static/a.txt"))?.1 == "OTHER version" })
        #expect(unlink(www + "/a.txt") == 0)
        #expect(eventually(seconds: 2) { (try? Self.get(address, "/static/a.txt"))?.0 == 404 })
        #expect(symlink("/etc/hostname", www + "/a.txt") == 0)
        #expect(eventually(seconds: 2) { (try? Self.get(address, "/static/a.txt"))?.0 == 403 })
        // HEAD, Range and If-Modified-Since of a cached file.
        try put("b.txt", "0123456789")
        _ = try Self.get(address, "/static/b.txt")
        let head = try rawHTTP(address, "HEAD /static/b.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(head.contains("Content-Length: 10") && head.hasSuffix("\r\n\r\n"), "\(head)")
        let range = try rawHTTP(address, "GET /static/b.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=2-4\r\nConnection: close\r\n\r\n")
        #expect(range.hasPrefix("HTTP/1.1 206") && range.hasSuffix("\r\n\r\n234"), "\(range)")
        #expect(h.stop() == 0)
    }

    @Test func aFileTruncatedWhileSentEndsTheConnectionAndIsLogged() throws {
        let h = try DaemonHarness(config: "")
        let www = try Self.makeWebRoot(h)
        let size = 16 << 20
        try Self.writeFile(www + "/shrinks.bin", size: size)
        try h.write(config: Self.webConfig(h), workers: 1)
        try h.start(captureLog: true)
        let address = try h.addresses("web")[0]
        let worker = try #require(try h.workerPids().first)
        let fd = try Self.smallWindowClient(address, receiveBuffer: 65536, timeout: 10)
        defer { close(fd) }
        let request = Array("GET /static/shrinks.bin HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        #expect(send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count)
        var received = 0
        var buf = [UInt8](repeating: 0, count: 65536)
        while received < 1 << 20 {
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { break }
            received += n
        }
        #expect(truncate(www + "/shrinks.bin", 0) == 0)
        let cpuBefore = ProcFS.cpuNanoseconds(pid_t(worker))
        var sawEnd = false
        let begin = gnet_monotonic_ns()
        while gnet_monotonic_ns() - begin < 8_000_000_000 {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 || (n < 0 && errno == ECONNRESET) { sawEnd = true; break }
            if n < 0 { break }  // the receive timeout: the server neither sent nor closed
            received += n
        }
        #expect(sawEnd, "the connection ends when the file cannot fill the response")
        #expect(received < size, "\(received) bytes of a response announced as \(size)")
        let cpu = Double(ProcFS.cpuNanoseconds(pid_t(worker)) - cpuBefore) / 1e9
        #expect(cpu < 0.5, "the worker used \(cpu) s of CPU after the truncation")
        #expect(eventually { h.log().contains("shrinks.bin ended at byte") }, "logged: \(h.log())")
        #expect(try Self.get(address, "/").0 == 200)
        #expect(h.stop() == 0)
    }

    @Test func httpEdgesRFC9112AsksFor() throws {
        let h = try DaemonHarness(config: "")
        _ = try Self.makeWebRoot(h)
        try h.write(config: Self.webConfig(h), workers: 1)
        try h.start()
        let address = try h.addresses("web")[0]
        // HTTP/1.0 with a chunked body: answered, then closed whatever it asked for (§6.1).
        let c = try EchoClient(address, timeout: 5)
        let chunked = Array("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8)
        _ = send(c.fd, chunked, chunked.count, Int32(MSG_NOSIGNAL))
        let answer = readUntilClosed(c.fd)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK") && answer.hasSuffix("Hello"), "answered and closed: \(answer)")
        // Absolute-form targets are routed by their path (§3.2.2).
        for (target, body) in [("http://example.com/big", String(repeating: "B", count: 4000)), ("HTTP://example.com", "Hello"),
                               ("http://example.com?x=/big", "Hello"), ("https://h:8080/big?q", String(repeating: "B", count: 4000))] {
            let (status, got) = try Self.get(address, target)
            #expect(status == 200 && got == body, "\(target): \(status) \(got.prefix(20))")
        }
        #expect(h.stop() == 0)
    }

    @Test func aWorkerThatStopsMakingProgressIsReplacedWithinTheStallTimeout() throws {
        let h = try DaemonHarness(config: "")
        let body = "worker_stall_timeout: 1s\n" + echoConfig(h)
        try h.write(config: body, workers: 2)
        try h.start(environment: ["GNETD_TEST_HOOKS=spin-on-usr2"], captureLog: true)
        let address = try h.addresses("echo")[0]
        for (how, signal) in [("SIGSTOP", SIGSTOP), ("a spinning loop", SIGUSR2)] {
            let pids = try h.workerPids()
            #expect(pids.count == 2)
            let victim = pids[0]
            let hungAt = gnet_monotonic_ns()
            kill(pid_t(victim), signal)
            var sawStalled = false
            let replaced = eventually(seconds: 10) {
                let ws = (try? h.workers()) ?? []
                if ws.contains(where: { $0["pid"] as? Int == victim && $0["state"] as? String == "stalled" }) { sawStalled = true }
                let serving = ws.filter { $0["state"] as? String == "serving" }.compactMap { $0["pid"] as? Int }
                return serving.count == 2 && !serving.contains(victim)
            }
            let seconds = Double(gnet_monotonic_ns() - hungAt) / 1e9
            #expect(replaced, "\(how): the worker was replaced")
            #expect(seconds < 2.5, "\(how): replaced \(seconds) s after it hung (stall timeout 1 s)")
            #expect(sawStalled, "\(how): gnetctl stats showed the worker as stalled")
            print("figure: worker hung by \(how) replaced after \(Int(seconds * 1000)) ms (worker_stall_timeout 1s)")
            #expect(eventually { kill(pid_t(victim), 0) != 0 }, "\(how): the stuck worker is gone")
            for _ in 0..<8 { try EchoClient(address).echo("after \(how)") }
        }
        #expect(h.log().contains("made no progress for"))
        #expect(h.stop() == 0)
    }

    @Test func aSecondGnetdOnTheSameConfigurationLeavesTheFirstAlone() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), workers: 1)
        try h.start()
        let unix = try NetworkAddress(parsing: "unix://\(h.dir)/echo.sock")
        try EchoClient(unix).echo("before")
        let second = try ChildProcess([DaemonHarness.binDir + "/gnetd", "--config", h.configPath], discardStderr: true)
        #expect(second.wait(timeout: 30) == 1, "the second gnetd refuses to start")
        try EchoClient(unix).echo("after")  // the first one's Unix socket was not taken over or removed
        #expect(h.stop() == 0)
    }

    @Test func aFileWhereASocketShouldBeIsNeverDeleted() throws {
        let h = try DaemonHarness(config: "")
        let precious = h.dir + "/precious.txt"
        try Self.writeFile(precious, size: 100)
        try h.write(config: "services:\n  - name: e\n    protocol: echo\n    listen: [\"unix://\(precious)\"]\n", workers: 1)
        let p = try ChildProcess([DaemonHarness.binDir + "/gnetd", "--config", h.configPath], discardStderr: true)
        #expect(p.wait(timeout: 30) == 1, "gnetd refuses the address")
        var st = stat()
        #expect(stat(precious, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 100, "the file is still there, untouched")
        // The control socket given as a service's address is refused by --check.
        try h.write(config: "services:\n  - name: e\n    protocol: echo\n    listen: [\"unix://\(h.controlPath)\"]\n", workers: 1)
        let check = try ChildProcess([DaemonHarness.binDir + "/gnetd", "--check", "--config", h.configPath], discardStderr: true)
        #expect(check.wait(timeout: 30) == 2)
    }

    @Test func aFastDownloadNeitherStarvesOtherClientsNorLooksLikeAStall() throws {
        let h = try DaemonHarness(config: "")
        let www = try Self.makeWebRoot(h)
        let fd = open(www + "/huge.bin", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(ftruncate(fd, 64 << 30) == 0)  // 64 GiB, sparse: the client never finishes
        close(fd)
        try h.write(config: "worker_stall_timeout: 1s\n" + Self.webConfig(h), workers: 1)
        try h.start()
        let address = try h.addresses("web")[0]
        let worker = try #require(try h.workerPids().first)
        let curl = try ChildProcess(["curl", "-s", "-o", "/dev/null", "--max-time", "3", "http://127.0.0.1:\(address.port)/static/huge.bin"])
        usleep(300_000)
        var worst: Int64 = 0
        for _ in 0..<20 {
            let begin = gnet_monotonic_ns()
            #expect(try Self.get(address, "/").0 == 200)
            worst = max(worst, gnet_monotonic_ns() - begin)
            usleep(100_000)
        }
        _ = curl.wait(timeout: 10)
        print("figure: small requests during a full-speed download on the same worker: slowest \(worst / 1_000_000) ms")
        #expect(worst < 500_000_000, "a small request waited \(worst / 1_000_000) ms behind the download")
        #expect(try h.workerPids() == [worker], "the busy worker was not taken for a stalled one")
        #expect((try h.request("stats")["supervisor"] as? [String: Any])?["respawns"] as? Int == 0)
        #expect(h.stop() == 0)
    }

    @Test func sendTimeoutHoldsWhateverTheOtherDeadlines() throws {
        let h = try DaemonHarness(config: "")
        let www = try Self.makeWebRoot(h)
        try Self.writeFile(www + "/big.bin", size: 8 << 20)
        try h.write(config: Self.webConfig(h, headerTimeout: "20s", extra: "    keepalive_timeout: 40s\n    send_timeout: 500ms\n"), workers: 1)
        try h.start(captureLog: true)
        let address = try h.addresses("web")[0]
        let fd = try Self.smallWindowClient(address, receiveBuffer: 4096, timeout: 10)
        defer { close(fd) }
        let request = Array("GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        #expect(send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count)
        let begin = gnet_monotonic_ns()
        // Never read: the server must give up after about send_timeout, not at a 20 s deadline.
        #expect(eventually(seconds: 8) { h.log().contains("took no response bytes") })
        let seconds = Double(gnet_monotonic_ns() - begin) / 1e9
        #expect(seconds < 3, "closed after \(seconds) s with send_timeout 500ms")
        #expect(h.stop() == 0)
    }

    @Test func largeRouteBodiesAndUnreachableRootsAreHandledAsCheckPromises() throws {
        let h = try DaemonHarness(config: "")
        // 300 000 bytes of body, JSON-escaped into the worker's description: far more than an
        // environment string may hold.
        let body = String(repeating: "\\u0001/", count: 50_000)
        try h.write(config: "services:\n  - name: web\n    protocol: http\n    listen: [\"tcp://127.0.0.1:0\"]\n    routes:\n      - { path: /, body: \"\(body)\" }\n", workers: 1)
        try h.start(captureLog: true)
        let address = try h.addresses("web")[0]
        let (status, got) = try Self.get(address, "/")
        #expect(status == 200 && got.utf8.count == 100_000)
        // A root the workers' user cannot open: the reload fails with the reason; never an empty 200.
        let locked = h.dir + "/locked"
        mkdir(locked, 0o700)
        mkdir(locked + "/www", 0o755)
        try h.write(config: "user: nobody\nservices:\n  - name: web\n    protocol: http\n    listen: [\"tcp://127.0.0.1:0\"]\n    routes:\n      - { path: /, root: \(locked)/www }\n", workers: 1)
        let answer = try h.request("reload", timeout: 60)
        #expect(answer["ok"] as? Bool == false)
        #expect((answer["error"] as? String ?? "").contains("cannot open the file root \(locked)/www: Permission denied"), "the reload says why: \(answer)")
        #expect(eventually { h.log().contains("cannot open the file root \(locked)/www: Permission denied") }, "\(h.log().suffix(500))")
        #expect(try Self.get(address, "/").0 == 200, "the old generation serves on")
        #expect(h.stop() == 0)
    }

    @Test func controlRequestsCostLinearTimeAndTheOperatorAlwaysGetsIn() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), workers: 1)
        try h.start()
        // 8 MiB of empty lines: linear work, not quadratic (trimming an array from the front per
        // line, as once done, costs hours here; the bound leaves room for a debug build on a
        // busy machine).
        let cpuBefore = ProcFS.cpuNanoseconds(h.pid)
        let lines = try EchoClient(try NetworkAddress(parsing: "unix://" + h.controlPath), timeout: 10)
        let empty = [UInt8](repeating: 10, count: 8 << 20)
        var off = 0
        while off < empty.count {
            let n = empty.withUnsafeBytes { send(lines.fd, $0.baseAddress! + off, empty.count - off, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { break }
            off += n
        }
        #expect(off == empty.count)
        let stats = try ControlClient.send(socket: h.controlPath, raw: "{\"command\": \"stats\"}\n", timeout: 10)
        #expect(stats.contains("\"ok\":true"))
        let cpu = Double(ProcFS.cpuNanoseconds(h.pid) - cpuBefore) / 1e9
        #expect(cpu < 3.0, "8 MiB of empty lines cost the supervisor \(cpu) CPU-s")
        lines.close()

        // 256 silent clients of another user fill the control socket; root still gets in, and
        // a 257th unprivileged client is turned away.
        let script = """
        import socket, sys, time
        held = []
        for i in range(256):
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)
        time.sleep(0.3)
        print("holding", flush=True)
        extra = socket.socket(socket.AF_UNIX); extra.connect(sys.argv[1]); extra.settimeout(5)
        extra.sendall(b'{"command": "status"}\\n')
        try:
            answer = extra.recv(200)
            print("extra refused" if answer == b"" or b"too many control clients" in answer else "extra answered %r" % answer, flush=True)
        except ConnectionResetError:
            print("extra refused", flush=True)
        except Exception as e:
            print("extra error", e, flush=True)
        sys.stdin.readline()
        """
        // Debian's python3: a per-user install (pyenv) is not the other user's to run.
        let crowd = try ChildProcess(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", script, h.controlPath])
        #expect(crowd.readLine(timeout: 20) == "holding")
        #expect(crowd.readLine(timeout: 20) == "extra refused", "the 257th unprivileged client is turned away at once")
        let status = try h.request("status")
        #expect(status["ok"] as? Bool == true, "root gets in past 256 idle clients")
        let (code, out) = try h.gnetctl(["reload", "-s", h.controlPath])
        #expect(code == 0, "reload as root: \(out)")
        crowd.writeLine("")
        _ = crowd.wait(timeout: 10)
        #expect(h.stop() == 0)
    }
}
