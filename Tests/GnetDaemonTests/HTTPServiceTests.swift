#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gnet
import GnetProcess
import Testing

let httpService = """
services:
  - name: web
    protocol: http
    listen: ["tcp://127.0.0.1:0"]
    header_timeout: 500ms
    keepalive_timeout: 5s
    max_body_size: 64KiB
    routes:
      - { path: /, body: "Hello, World!", content_type: text/plain }
      - { path: /api/, body: "{\\"ok\\":true}", content_type: application/json, status: 201 }

"""

/// Raw HTTP over a blocking socket: sends bytes, reads until `count` responses or EOF.
func rawHTTP(_ address: NetworkAddress, _ request: String, timeout: Int = 5) throws -> String {
    let c = try EchoClient(address, timeout: timeout)
    let bytes = Array(request.utf8)
    _ = send(c.fd, bytes, bytes.count, Int32(MSG_NOSIGNAL))
    return readUntilClosed(c.fd)
}

/// Everything the peer sends on `fd` until it closes (or the socket's receive timeout).
func readUntilClosed(_ fd: Int32) -> String {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct HTTPServiceTests {
    @Test func realClientsAndRawRequests() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: httpService)
        try h.start()
        let address = try h.addresses("web")[0]
        let url = "http://127.0.0.1:\(address.port)"

        // curl: two requests on one kept-alive connection, then HEAD.
        let curl = try ChildProcess(["curl", "-sS", "--max-time", "10", "-w", "|%{http_code}|%{num_connects}\n", url + "/", url + "/api/x"])
        let out = curl.readAll(timeout: 20)
        #expect(curl.wait(timeout: 20) == 0)
        #expect(out.contains("Hello, World!|200|1"))
        #expect(out.contains("{\"ok\":true}|201|0"), "the second request reused the connection: \(out)")
        let head = try ChildProcess(["curl", "-sS", "-I", "--max-time", "10", url + "/"])
        let headers = head.readAll(timeout: 20)
        #expect(head.wait(timeout: 20) == 0)
        #expect(headers.contains("HTTP/1.1 200 OK") && headers.contains("Content-Length: 13") && headers.contains("Date: "))

        // python's http.client: keep-alive, a chunked upload, Expect: 100-continue.
        let script = """
        import http.client, sys
        c = http.client.HTTPConnection("127.0.0.1", \(address.port), timeout=10)
        for i in range(3):
            c.request("GET", "/")
            r = c.getresponse(); assert r.status == 200 and r.read() == b"Hello, World!", r.status
        c.request("POST", "/api/upload", body=iter([b"abc", b"defgh"]), encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse(); assert r.status == 201 and r.read() == b'{"ok":true}'
        c.request("PUT", "/x", body=b"x" * 1000, headers={"Expect": "100-continue"})
        r = c.getresponse(); assert r.status == 200, r.status; r.read()
        print("ok")
        """
        let py = try ChildProcess(["python3", "-c", script])
        #expect(py.readAll(timeout: 30) == "ok")
        #expect(py.wait(timeout: 30) == 0)

        // Pipelining: three requests in one write, three responses in order.
        let piped = try rawHTTP(address, "GET /api/1 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /api/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        // Bodies carry no trailing newline, so a status line follows the previous body directly.
        let statuses = piped.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(while: { $0 != "\r\n" })) }
        #expect(statuses == ["201 Created", "200 OK", "201 Created"])
        #expect(piped.hasSuffix("{\"ok\":true}"))

        // Routes match the path only (never the query), longest prefix first, short and long
        // targets alike.
        let long = String(repeating: "z", count: 40)
        let routed = try rawHTTP(address, ["/?/api/", "/\(long)?/api/", "/api/\(long)?q", "/ap", "/api", "/api/"]
            .map { "GET \($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined() + "GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let routedStatuses = routed.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(while: { $0 != "\r\n" })) }
        #expect(routedStatuses == ["200 OK", "200 OK", "201 Created", "200 OK", "200 OK", "201 Created", "201 Created"], "\(routed)")

        // Pipelined requests with bodies among them (Content-Length, chunked), HEAD, and the
        // whole batch sent whole and then in 7-byte pieces: the same answers in the same order.
        let mixed = "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /api/p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "GET /api/q?x=\"1\" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        func statusLines(_ text: String) -> [String] {
            text.components(separatedBy: "\r\n").filter { $0.hasPrefix("HTTP/1.1 ") }.map { String($0.dropFirst(9)) }
        }
        let expected = ["200 OK", "201 Created", "200 OK", "200 OK", "201 Created"]
        let whole = try rawHTTP(address, mixed)
        #expect(statusLines(whole.replacingOccurrences(of: "Hello, World!", with: "\r\n").replacingOccurrences(of: "{\"ok\":true}", with: "\r\n")) == expected, "\(whole)")
        let pieces = try EchoClient(address, timeout: 5)
        var noDelay: Int32 = 1
        setsockopt(pieces.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, 4)
        let mixedBytes = Array(mixed.utf8)
        for start in stride(from: 0, to: mixedBytes.count, by: 7) {
            let piece = Array(mixedBytes[start..<min(start + 7, mixedBytes.count)])
            _ = send(pieces.fd, piece, piece.count, Int32(MSG_NOSIGNAL))
        }
        let split = readUntilClosed(pieces.fd)
        #expect(statusLines(split.replacingOccurrences(of: "Hello, World!", with: "\r\n").replacingOccurrences(of: "{\"ok\":true}", with: "\r\n")) == expected, "\(split)")

        // Answers followed by the start of a head that never ends: the rest of the head is
        // held to header_timeout (408), not to the longer keep-alive timeout.
        let startedAt = Date()
        let trailing = try rawHTTP(address, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHo")
        #expect(statusLines(trailing.replacingOccurrences(of: "Hello, World!", with: "\r\n")) == ["200 OK", "408 Request Timeout"], "\(trailing)")
        #expect(Date().timeIntervalSince(startedAt) < 4, "closed after header_timeout (500ms), not keepalive_timeout (5s)")

        // HTTP/1.0 closes unless asked to keep alive.
        #expect(try rawHTTP(address, "GET / HTTP/1.0\r\n\r\n").hasSuffix("Hello, World!"))

        // Refusals: each gets its status and a close; nothing is guessed.
        for (request, status) in [
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999\r\n\r\n", "413"),
            ("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n", count: 800) + "\r\n", "431"),
            ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", "414"),
            ("BREW /pot HTCPCP/1.0\r\n\r\n", "400"),
            ("\u{16}\u{3}\u{1}\u{0}\u{a5}\u{1}\u{0}\u{0}\u{a1}\u{3}\u{3}\r\n\r\n", "400"),
        ] {
            let answer = try rawHTTP(address, request)
            #expect(answer.hasPrefix("HTTP/1.1 \(status) ") && answer.contains("Connection: close"), "\(request.prefix(60).debugDescription) → \(answer.prefix(80))")
        }

        // A slow client that never finishes its head gets 408 after header_timeout.
        let start = Date()
        let slow = try rawHTTP(address, "GET / HTTP/1.1\r\nHost: a\r\n")
        #expect(slow.hasPrefix("HTTP/1.1 408 "))
        #expect(Date().timeIntervalSince(start) >= 0.4)

        // The worker is unharmed.
        #expect(try rawHTTP(address, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").hasSuffix("Hello, World!"))
        #expect(h.stop() == 0)
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct HTTPStaticFileTests {
    func writeFile(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    @Test func servesFilesAndNothingOutsideTheRoot() throws {
        let h = try DaemonHarness(config: "")
        let root = h.dir + "/www"
        mkdir(root, 0o755)
        mkdir(root + "/sub", 0o755)
        writeFile(root + "/index.html", Array("<h1>home</h1>".utf8))
        writeFile(root + "/a.txt", Array("0123456789".utf8))
        writeFile(root + "/sub/index.html", Array("sub home".utf8))
        var big = [UInt8](repeating: 0, count: 3 << 20)
        var x: UInt64 = 7
        for i in big.indices { x ^= x << 13; x ^= x >> 7; x ^= x << 17; big[i] = UInt8(truncatingIfNeeded: x) }
        writeFile(root + "/big.bin", big)
        writeFile(h.dir + "/secret.txt", Array("secret".utf8))
        symlink(h.dir + "/secret.txt", root + "/link")
        try h.write(config: """
        services:
          - name: web
            protocol: http
            listen: ["tcp://127.0.0.1:0"]
            routes:
              - { path: /, body: "fixed" }
              - { path: /static/, root: \(root) }

        """)
        try h.start()
        let address = try h.addresses("web")[0]
        let url = "http://127.0.0.1:\(address.port)"

        func curl(_ args: [String]) throws -> String {
            let p = try ChildProcess(["curl", "-sS", "--max-time", "10"] + args)
            let out = p.readAll(timeout: 20)
            #expect(p.wait(timeout: 20) == 0)
            return out
        }
        #expect(try curl([url + "/static/a.txt"]) == "0123456789")
        #expect(try curl([url + "/static/"]) == "<h1>home</h1>")
        #expect(try curl([url + "/static/sub/"]) == "sub home")
        #expect(try curl(["-r", "2-5", url + "/static/a.txt"]) == "2345")
        #expect(try curl(["-r", "-3", url + "/static/a.txt"]) == "789")
        #expect(try curl([url + "/elsewhere"]) == "fixed")
        let headers = try curl(["-I", url + "/static/big.bin"])
        #expect(headers.contains("Content-Length: \(3 << 20)") && headers.contains("application/octet-stream") && headers.contains("Last-Modified: "))
        let lastModified = headers.components(separatedBy: "\r\n").first { $0.hasPrefix("Last-Modified: ") }.map { String($0.dropFirst(15)) } ?? ""
        let conditional = try rawHTTP(address, "GET /static/a.txt HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: \(lastModified)\r\nConnection: close\r\n\r\n")
        #expect(conditional.hasPrefix("HTTP/1.1 304 "))
        let unsatisfiable = try rawHTTP(address, "GET /static/a.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=100-200\r\nConnection: close\r\n\r\n")
        #expect(unsatisfiable.hasPrefix("HTTP/1.1 416 ") && unsatisfiable.contains("Content-Range: bytes */10"))
        for (path, status) in [("/static/../secret.txt", "403"), ("/static/%2e%2e/secret.txt", "403"), ("/static/sub/%2E%2E/%2e%2e/secret.txt", "403"),
                               ("/static/link", "403"), ("/static/missing", "404"), ("/static/%zz", "403"), ("/static/a.txt%00.html", "403")] {
            let answer = try rawHTTP(address, "GET \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 \(status) "), "\(path) → \(answer.prefix(40))")
            #expect(!answer.contains("secret"))
        }
        // A 3 MiB file through sendfile, then a pipelined request behind it on the same connection.
        let script = """
        import http.client, hashlib, sys
        c = http.client.HTTPConnection("127.0.0.1", \(address.port), timeout=20)
        c.request("GET", "/static/big.bin"); r = c.getresponse(); body = r.read()
        c.request("GET", "/static/a.txt"); r2 = c.getresponse(); small = r2.read()
        print(len(body), hashlib.sha256(body).hexdigest(), small.decode())
        """
        let py = try ChildProcess(["python3", "-c", script])
        let line = py.readAll(timeout: 60)
        #expect(py.wait(timeout: 60) == 0)
        let expectedHash = try ChildProcess(["sha256sum", root + "/big.bin"]).readAll(timeout: 20).split(separator: " ").first.map(String.init) ?? "?"
        #expect(line == "\(3 << 20) \(expectedHash) 0123456789")
        #expect(h.stop() == 0)
    }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct HTTPAccessLogTests {
    @Test func logsRequestsAndReopensOnSIGUSR1() throws {
        let h = try DaemonHarness(config: "")
        let log = h.dir + "/access.log"
        try h.write(config: """
        services:
          - name: web
            protocol: http
            listen: ["tcp://127.0.0.1:0"]
            access_log: \(log)
            routes:
              - { path: /, body: "Hello, World!" }

        """, workers: 1)
        try h.start()
        let address = try h.addresses("web")[0]
        _ = try rawHTTP(address, "GET /one HTTP/1.1\r\nHost: a\r\n\r\nHEAD /two?x=\"y\" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        _ = try rawHTTP(address, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        // Rotation: move the file away, SIGUSR1, and the next lines go to a new file at the path.
        #expect(eventually { (ProcFS.readFile(log) ?? "").split(separator: "\n").count == 3 })
        rename(log, log + ".1")
        kill(h.pid, SIGUSR1)
        #expect(eventually { access(log, F_OK) == 0 })
        _ = try rawHTTP(address, "GET /after HTTP/1.0\r\n\r\n")
        #expect(h.stop() == 0)
        let old = (ProcFS.readFile(log + ".1") ?? "").split(separator: "\n").map(String.init)
        #expect(old.count == 3)
        #expect(old[0].hasPrefix("127.0.0.1 - - [") && old[0].hasSuffix("] \"GET /one HTTP/1.1\" 200 13"), "\(old)")
        #expect(old[1].hasSuffix("\"HEAD /two?x='y' HTTP/1.1\" 200 0"), "\(old)")
        #expect(old[2].hasSuffix("\" 400 0"), "\(old)")
        let new = ProcFS.readFile(log) ?? ""
        #expect(new.hasSuffix("\"GET /after HTTP/1.0\" 200 13\n"), "\(new)")
    }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct HTTPDrainTests {
    func send(_ c: EchoClient, _ text: String) { let b = Array(text.utf8); _ = Glibc.send(c.fd, b, b.count, Int32(MSG_NOSIGNAL)) }

    /// What one recv brings: a short response on loopback.
    func readResponse(_ c: EchoClient) -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(c.fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
    }

    /// On reload the old worker drains like nginx's graceful shutdown: a kept-alive connection
    /// waiting for its next request is closed at once (not at keepalive_timeout or the drain
    /// timeout), a request in flight is answered with `Connection: close`, and the old worker
    /// is gone long before its drain timeout.
    @Test func reloadClosesIdleKeptAliveConnectionsAndAnswersInFlightOnes() throws {
        let h = try DaemonHarness(config: "")
        let config = """
        services:
          - name: web
            protocol: http
            listen: ["tcp://127.0.0.1:0"]
            header_timeout: 30s
            keepalive_timeout: 60s
            routes:
              - { path: /, body: "Hello, World!" }

        """
        try h.write(config: config, workers: 1, drain: "30s")
        try h.start()
        let address = try h.addresses("web")[0]
        let idle = try EchoClient(address, timeout: 10)
        send(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(readResponse(idle).hasSuffix("Hello, World!"))
        let inFlight = try EchoClient(address, timeout: 10)
        send(inFlight, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(readResponse(inFlight).hasSuffix("Hello, World!"))
        send(inFlight, "GET / HTTP/1.1\r\nHo")  // the next request, half sent
        #expect(eventually { ((try? h.request("stats")["totals"] as? [String: Any])?["bytes_in"] as? Int ?? 0) >= 70 })
        // A third kept-alive connection will have a request in its socket, not yet read, when
        // draining begins: the old worker is stopped, told to drain, sent the request, resumed
        // (its drain order is then ahead of the request in epoll's ready list).
        let unread = try EchoClient(address, timeout: 10)
        send(unread, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(readResponse(unread).hasSuffix("Hello, World!"))
        let oldPid = try #require(try h.workers().first?["pid"] as? Int)
        kill(pid_t(oldPid), SIGSTOP)
        defer { kill(pid_t(oldPid), SIGCONT) }

        let reloadedAt = Date()
        #expect(try h.request("reload")["ok"] as? Bool == true)
        send(unread, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        // (On loopback the bytes are in the stopped worker's socket when send returns.)
        kill(pid_t(oldPid), SIGCONT)
        let answer0 = readUntilClosed(unread.fd)
        #expect(answer0.hasPrefix("HTTP/1.1 200 OK") && answer0.contains("Connection: close") && answer0.hasSuffix("Hello, World!"),
                "a request waiting in the socket when draining began is answered, not reset: \(answer0.debugDescription)")
        var byte: UInt8 = 0
        #expect(recv(idle.fd, &byte, 1, 0) == 0, "the idle kept-alive connection is closed by the draining worker")
        #expect(Date().timeIntervalSince(reloadedAt) < 10)
        send(inFlight, "st: a\r\n\r\n")
        let last = readUntilClosed(inFlight.fd)
        #expect(last.hasPrefix("HTTP/1.1 200 OK") && last.contains("Connection: close") && last.hasSuffix("Hello, World!"), "\(last)")
        #expect(eventually(seconds: 10) { ((try? h.workers()) ?? []).allSatisfy { $0["pid"] as? Int != oldPid } },
                "the old worker exits once its connections are done, not at the 30s drain timeout")
        #expect(Date().timeIntervalSince(reloadedAt) < 15)
        // The new generation serves kept-alive connections as before.
        let fresh = try EchoClient(address, timeout: 10)
        send(fresh, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let answer = readResponse(fresh)
        #expect(answer.hasSuffix("Hello, World!") && !answer.contains("Connection: close"))
        #expect(h.stop() == 0)
    }

    /// The drain without the race: an idle kept-alive connection is given `drain_idle_grace`
    /// (a request the client sends then is answered, with `Connection: close`), one that sends
    /// nothing is closed after it, and pipelined requests are all answered, the last one closing.
    @Test func drainGivesIdleConnectionsAGraceAndAnswersEveryPipelinedRequest() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: """
        drain_idle_grace: 2s
        services:
          - name: web
            protocol: http
            listen: ["tcp://127.0.0.1:0"]
            keepalive_timeout: 60s
            routes:
              - { path: /, body: "Hello, World!" }

        """, workers: 1, drain: "30s")
        try h.start()
        let address = try h.addresses("web")[0]
        let request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        let late = try EchoClient(address, timeout: 10), silent = try EchoClient(address, timeout: 10)
        let pipelined = try EchoClient(address, timeout: 10)
        for c in [late, silent, pipelined] {
            send(c, request)
            #expect(readResponse(c).hasSuffix("Hello, World!"))
        }
        let reloadedAt = Date()
        #expect(try h.request("reload")["ok"] as? Bool == true)
        usleep(300_000)
        // A request sent after draining began, inside the grace: answered, then closed.
        send(late, request)
        let lateAnswer = readUntilClosed(late.fd)
        #expect(lateAnswer.hasPrefix("HTTP/1.1 200 OK") && lateAnswer.contains("Connection: close") && lateAnswer.hasSuffix("Hello, World!"),
                "\(lateAnswer.debugDescription)")
        // Five pipelined requests at once: five answers, only the last closing.
        send(pipelined, String(repeating: request, count: 5))
        let batch = readUntilClosed(pipelined.fd)
        #expect(batch.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 5, "\(batch.debugDescription)")
        #expect(batch.components(separatedBy: "Connection: close").count - 1 == 1)
        #expect((batch.components(separatedBy: "HTTP/1.1 200 OK").last ?? "").contains("Connection: close"), "the last answer closes")
        // The silent one is still open within the grace, and closed after it.
        var byte: UInt8 = 0
        if Date().timeIntervalSince(reloadedAt) < 1.5 {
            #expect(recv(silent.fd, &byte, 1, Int32(MSG_DONTWAIT)) < 0 && errno == EAGAIN, "closed before its grace")
        }
        #expect(recv(silent.fd, &byte, 1, 0) == 0, "the silent connection is closed once its grace is over")
        let closedAfter = Date().timeIntervalSince(reloadedAt)
        #expect(closedAfter >= 1.9 && closedAfter < 6, "closed \(closedAfter) s after the reload (grace 2 s)")
        #expect(h.stop() == 0)
    }

    /// Echo and push drain at a boundary too: push closes at once after whole messages; an
    /// echo connection is closed once idle for drain_idle_grace, never while it is talking.
    @Test func echoAndPushDrainAtABoundary() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: """
        drain_idle_grace: 1s
        services:
          - name: echo
            protocol: echo
            listen: ["tcp://127.0.0.1:0"]
          - name: ticks
            protocol: push
            listen: ["tcp://127.0.0.1:0"]
            interval: 50ms
            message: tick

        """, workers: 1, drain: "30s")
        try h.start()
        let echo = try h.addresses("echo")[0], ticks = try h.addresses("ticks")[0]
        let idle = try EchoClient(echo, timeout: 10), talking = try EchoClient(echo, timeout: 10)
        try idle.echo("hello")
        try talking.echo("hello")
        let push = try EchoClient(ticks, timeout: 10)
        var first = [UInt8](repeating: 0, count: 5)
        #expect(recv(push.fd, &first, 5, Int32(MSG_WAITALL)) == 5)
        let reloadedAt = Date()
        #expect(try h.request("reload")["ok"] as? Bool == true)
        // The talking client keeps echoing for 2 s, past the grace: every echo is answered.
        for i in 0..<10 {
            try talking.echo("ping \(i)")
            usleep(200_000)
        }
        #expect(Date().timeIntervalSince(reloadedAt) >= 2)
        // The idle one was closed after its grace.
        var byte: UInt8 = 0
        #expect(recv(idle.fd, &byte, 1, 0) == 0)
        // The push client got whole lines, then the close.
        let rest = String(decoding: first, as: UTF8.self) + readUntilClosed(push.fd)
        #expect(rest.hasSuffix("tick\n") && rest.split(separator: "\n").allSatisfy { $0 == "tick" }, "\(rest.suffix(40).debugDescription)")
        // The talking one is closed about a grace after it stops.
        let stopped = Date()
        #expect(recv(talking.fd, &byte, 1, 0) == 0)
        let quiet = Date().timeIntervalSince(stopped)
        #expect(quiet >= 0.5 && quiet < 5, "closed \(quiet) s after it went quiet (grace 1 s)")
        #expect(h.stop() == 0)
    }
}
