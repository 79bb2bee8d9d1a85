import GnetServices
import Testing

func parseHead(_ text: String, limits: HTTPLimits = HTTPLimits()) -> HTTPHeadParseResult {
    Array(text.utf8).withUnsafeBytes { HTTPHeadParser.parse($0, limits: limits) }
}

@Suite struct HTTPHeadParserTests {
    @Test func parsesAValidRequest() {
        let text = "GET /index.html?q=1 HTTP/1.1\r\nHost: example\r\nConnection: keep-alive\r\nIf-Modified-Since: Wed, 21 Oct 2015 07:28:00 GMT\r\nRange: bytes=0-9\r\nX-Other:  spaced value \r\n\r\nBODY"
        guard case .complete(let head, let length) = parseHead(text) else { Issue.record("not complete"); return }
        #expect(length == text.utf8.count - 4)
        #expect(head.method == "GET" && head.target == "/index.html?q=1" && head.minorVersion == 1)
        #expect(head.host == "example" && head.keepAlive && head.contentLength == nil && !head.chunked)
        #expect(head.ifModifiedSince == "Wed, 21 Oct 2015 07:28:00 GMT" && head.range == "bytes=0-9")
        #expect(head.headerCount == 5)
    }

    @Test func keepAliveFollowsVersionAndConnection() {
        func keepAlive(_ t: String) -> Bool? { if case .complete(let h, _) = parseHead(t) { return h.keepAlive }; return nil }
        #expect(keepAlive("GET / HTTP/1.0\r\n\r\n") == false)
        #expect(keepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == true)
        #expect(keepAlive("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == true)
        #expect(keepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") == false)
        #expect(keepAlive("GET / HTTP/1.1\nHost: a\n\n") == true, "lone LF line endings are accepted")
    }

    @Test func bodyFraming() {
        if case .complete(let h, _) = parseHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n") { #expect(h.contentLength == 42) } else { Issue.record("CL") }
        if case .complete(let h, _) = parseHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n") { #expect(h.contentLength == 7) } else { Issue.record("CL list") }
        if case .complete(let h, _) = parseHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n") {
            #expect(h.chunked && h.expectContinue)
        } else { Issue.record("chunked") }
    }

    @Test func usualRequestLineReadsAsTheGeneralOne() {
        // A leading CRLF (allowed and ignored) sends the same line down the general path:
        // both must agree on every line, including those at the length limit and past it.
        var limits = HTTPLimits()
        limits.maxRequestLine = 40
        let printable = String((0x21...0x7E).map { Character(Unicode.Scalar($0)) }.filter { $0 != "?" }.prefix(20))
        let lines = ["GET / HTTP/1.1", "GET /a?b=c HTTP/1.0", "GET /\(printable) HTTP/1.1", "GET /x HTTP/1.2", "GET /x HTTP/2.0",
                     "GET /x HTTPS1.1", "GET x HTTP/1.1", "GET  /x HTTP/1.1", "GET /x  HTTP/1.1", "GET /x HTTP/1.1 ",
                     "GET /" + String(repeating: "a", count: 26) + " HTTP/1.1", "GET /" + String(repeating: "a", count: 27) + " HTTP/1.1",
                     "GET /\u{7F} HTTP/1.1", "GET /\t HTTP/1.1", "GET /x\rHTTP/1.1", "HEAD / HTTP/1.1", "GETS / HTTP/1.1"]
        for line in lines {
            for ending in ["\r\n", "\n"] {
                let text = line + ending + "Host: a\r\n\r\n"
                let usual = parseHead(text, limits: limits), general = parseHead("\r\n" + text, limits: limits)
                switch (usual, general) {
                case (.complete(let a, let n), .complete(let b, let m)): #expect(a == b && n + 2 == m, "\(line.debugDescription)")
                case (.failed(let a), .failed(let b)): #expect(a == b, "\(line.debugDescription)")
                default: Issue.record("\(line.debugDescription): \(usual) vs \(general)")
                }
            }
        }
    }

    @Test func fieldNamesInAnyCaseAndOnlyExactly() {
        // The interpreted names are recognized in any case, and nothing else passes for them.
        if case .complete(let h, _) = parseHead("PUT /x HTTP/1.1\r\nhOsT: a\r\nCONTENT-LENGTH: 3\r\ncOnNeCtIoN: CLOSE\r\nEXPECT: 100-Continue\r\nrange: bytes=1-2\r\nIF-MODIFIED-SINCE: x\r\n\r\n") {
            #expect(h.method == "PUT" && h.host == "a" && h.contentLength == 3 && !h.keepAlive && h.expectContinue && h.range == "bytes=1-2" && h.ifModifiedSince == "x")
        } else { Issue.record("mixed case names") }
        // Near misses are other fields: a longer name, a name that only starts alike, `_` for `-`.
        if case .complete(let h, _) = parseHead("GET / HTTP/1.1\r\nHost: a\r\nHosts: b\r\nContent-Lengthy: 5\r\nContent_Length: 5\r\nConnectionx: close\r\nRang: x\r\n\r\n") {
            #expect(h.host == "a" && h.contentLength == nil && h.keepAlive && h.range == nil && h.headerCount == 6)
        } else { Issue.record("near misses") }
        // A control byte where a known name has `-` is an invalid name, never that field.
        if case .failed(let e) = parseHead("GET / HTTP/1.1\r\nHost: a\r\nContent\rLength: 5\r\n\r\n") { #expect(e.status == 400) } else { Issue.record("CR in a name") }
        if case .failed(let e) = parseHead("GET / HTTP/1.1\r\nHost: a\r\nTransfer\rEncoding: chunked\r\n\r\n") { #expect(e.status == 400) } else { Issue.record("CR in a name") }
        if case .failed(let e) = parseHead("GET / HTTP/1.1\r\nHost: a\r\nIf\rModified-Since: x\r\n\r\n") { #expect(e.status == 400) } else { Issue.record("CR in a name") }
        if case .failed(let e) = parseHead("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") { #expect(e.reason == "more than one Host") } else { Issue.record("two Hosts") }
        if case .failed(let e) = parseHead("GET / HTTP/1.1\r\nHost : a\r\n\r\n") { #expect(e.status == 400) } else { Issue.record("space before colon") }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTX/1.1\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n: empty\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: \u{1}\r\n\r\n", 400),
    ])
    func refusesWhatItMustNotGuess(_ text: String, _ status: Int) {
        guard case .failed(let e) = parseHead(text) else { Issue.record("accepted: \(text.debugDescription)"); return }
        #expect(e.status == status, "\(text.debugDescription): \(e)")
    }

    @Test func limits() {
        var l = HTTPLimits()
        l.maxRequestLine = 32
        l.maxHead = 128
        l.maxHeaders = 3
        guard case .failed(let e1) = parseHead("GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\n", limits: l) else { Issue.record("414"); return }
        #expect(e1.status == 414)
        guard case .failed(let e2) = parseHead("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 200), limits: l) else { Issue.record("431"); return }
        #expect(e2.status == 431)
        guard case .failed(let e3) = parseHead("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits: l) else { Issue.record("count"); return }
        #expect(e3.status == 431)
        #expect(parseHead("GET /" + String(repeating: "a", count: 20), limits: l) == .incomplete)
    }

    /// Every prefix of a valid head is incomplete (never an error, never complete early), and
    /// the whole head parses to the same result however it arrived.
    @Test func splitAtEveryPosition() {
        let text = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        let whole = parseHead(text)
        guard case .complete(_, let length) = whole else { Issue.record("whole"); return }
        #expect(length == text.utf8.count)
        let bytes = Array(text.utf8)
        for cut in 0..<bytes.count {
            let r = Array(bytes[0..<cut]).withUnsafeBytes { HTTPHeadParser.parse($0) }
            #expect(r == .incomplete, "prefix of \(cut) bytes: \(r)")
        }
    }

    @Test func garbageIsRefusedOrIncompleteNeverACrash() {
        var x: UInt64 = 0xDEADBEEF
        let alphabet = Array("GET POST / HTTP/1.1\r\n:Host: a-Content-Length 0123456789chunked\t ,;\u{0}\u{7f}é".utf8)
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            for _ in 0..<Int(x % 120) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                bytes.append(alphabet[Int(x % UInt64(alphabet.count))])
            }
            let r = bytes.withUnsafeBytes { HTTPHeadParser.parse($0) }
            if case .complete(_, let n) = r { #expect(n <= bytes.count) }
            if case .failed(let e) = r { #expect([400, 414, 431, 501, 505].contains(e.status)) }
        }
    }
}
