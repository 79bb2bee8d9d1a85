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
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(c.fd, &buf, buf.count, 0)
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
