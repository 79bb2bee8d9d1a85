#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetServices

// libFuzzer target for the HTTP request-head parser and the chunked-body decoder, and (with
// GNET_FUZZ_CODEC=http-service) for the whole http service (Tests/scripts/fuzz.sh builds and
// runs it). One file: an executable target of one file needs no main of its own.
//
// The parser and decoder are checked for every input: no crash or trap; a
// complete head never claims more bytes than it was given; every refusal carries one of the
// statuses the server sends; parsing a prefix of a complete head never reports an error (so a
// head split across reads cannot be refused); the chunked decoder never consumes more than it
// was given and reaches the same state fed whole or byte by byte.

/// GNET_FUZZ_CODEC=http-service fuzzes the whole service instead (below).
let fuzzingTheService = getenv("GNET_FUZZ_CODEC").map { String(cString: $0) == "http-service" } ?? false

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if fuzzingTheService { return fuzzService(data, size) }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var limits = HTTPLimits()
    limits.maxRequestLine = 512
    limits.maxHead = 2048
    limits.maxHeaders = 16
    switch HTTPHeadParser.parse(bytes, limits: limits) {
    case .complete(_, let length):
        precondition(length > 0 && length <= size, "head length \(length) outside \(size) bytes")
        for cut in stride(from: 0, to: length, by: max(1, length / 16)) {
            let r = HTTPHeadParser.parse(UnsafeRawBufferPointer(rebasing: bytes[0..<cut]), limits: limits)
            if case .failed(let e) = r, e.status != 414, e.status != 431 {
                preconditionFailure("a prefix of \(cut) bytes of a valid head was refused: \(e)")
            }
        }
    case .failed(let e):
        precondition([400, 414, 431, 501, 505].contains(e.status), "unexpected status \(e.status)")
    case .incomplete:
        break
    }
    var whole = ChunkedBodyDecoder(maxBody: 1 << 16)
    let w = whole.consume(bytes)
    precondition(w.consumed <= size, "chunked decoder consumed \(w.consumed) of \(size)")
    if w.state == .done || w.state == .needMore {
        var stepwise = ChunkedBodyDecoder(maxBody: 1 << 16)
        var buffer: [UInt8] = []
        var state = ChunkedBodyDecoder.State.needMore
        var used = 0
        for b in bytes {
            buffer.append(b)
            let r = buffer.withUnsafeBytes { stepwise.consume($0) }
            buffer.removeFirst(r.consumed)
            used += r.consumed
            state = r.state
            if state != .needMore { break }
        }
        precondition(state == w.state, "whole: \(w.state), byte by byte: \(state)")
        if state == .done { precondition(used == w.consumed, "consumed \(w.consumed) whole, \(used) byte by byte") }
    }
    return 0
}

// MARK: - the whole service

// libFuzzer target for the whole http service (GNET_FUZZ_CODEC=http-service): the fuzz input
// is a script of client actions — well-formed requests of ten kinds (bodies, chunked, HEAD,
// Expect: 100-continue, files, Connection: close, HTTP/1.0), raw bytes, pauses, reads — played
// against `HTTPService` running on a real Gnet loop, over a Unix socket pair, with small
// buffers so that backpressure comes into play. Checked for every input: every response is
// well-formed; never more responses than requests; until the script first sends raw bytes,
// the responses are exactly the expected ones, in request order, byte for byte; the server
// ends the exchange (no hang) once the client has half-closed; and no crash (the process's
// memory is bounded by libFuzzer's -rss_limit_mb).

/// The service under test, on its own loop thread for the life of the fuzzing process.
enum ServiceUnderTest {
    static let fileBody: [UInt8] = (0..<5000).map { UInt8(ascii: "a") + UInt8($0 % 26) }
    static let bigBody = [UInt8](repeating: UInt8(ascii: "b"), count: 3000)

    nonisolated(unsafe) static let engine: Engine = {
        var template = Array("/tmp/gnet-fuzz-http-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template).map({ String(cString: $0) }) else { fatalError("mkdtemp") }
        let fd = open(dir + "/f.txt", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        _ = fileBody.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        var o = HTTPServiceOptions()
        o.headerTimeout = .seconds(20)
        o.keepaliveTimeout = .seconds(20)
        o.maxBodySize = 4096
        o.limits.maxRequestLine = 1024
        o.limits.maxHead = 4096
        o.logger = StandardErrorLogger(level: .error)
        let service = HTTPService(routes: [
            HTTPRoute(prefix: "/", body: Array("A".utf8)),
            HTTPRoute(prefix: "/big", body: bigBody),
            HTTPRoute(prefix: "/s/", body: [], root: dir),
        ], options: o)
        var options = Options()
        options.readBufferCap = 1024
        options.writeBufferCap = 4096
        options.logger = StandardErrorLogger(level: .error)
        do {
            let e = try Engine(handler: service, listeners: [], options: options)
            try e.start()
            return e
        } catch {
            fatalError("cannot start the engine: \(error)")
        }
    }()
}

/// One well-formed request the script can send, and the answer it must get.
struct RequestKind {
    let bytes: [UInt8]
    let status: Int
    let body: [UInt8]
    /// HEAD: the answer has no body whatever its Content-Length.
    var isHEAD = false
    /// An interim `100 Continue` comes first.
    var continues = false
    /// The server closes after answering.
    var closes = false

    static let all: [RequestKind] = {
        let a = Array("A".utf8)
        func r(_ s: String) -> [UInt8] { Array(s.utf8) }
        return [
            RequestKind(bytes: r("GET / HTTP/1.1\r\nHost: f\r\n\r\n"), status: 200, body: a),
            RequestKind(bytes: r("GET /big HTTP/1.1\r\nHost: f\r\n\r\n"), status: 200, body: ServiceUnderTest.bigBody),
            RequestKind(bytes: r("HEAD /big HTTP/1.1\r\nHost: f\r\n\r\n"), status: 200, body: [], isHEAD: true),
            RequestKind(bytes: r("POST /x HTTP/1.1\r\nHost: f\r\nContent-Length: 7\r\n\r\nabcdefg"), status: 200, body: a),
            RequestKind(bytes: r("POST / HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"), status: 200, body: a),
            RequestKind(bytes: r("PUT / HTTP/1.1\r\nHost: f\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz"), status: 200, body: a, continues: true),
            RequestKind(bytes: r("GET /s/f.txt HTTP/1.1\r\nHost: f\r\n\r\n"), status: 200, body: ServiceUnderTest.fileBody),
            RequestKind(bytes: r("GET /s/none HTTP/1.1\r\nHost: f\r\n\r\n"), status: 404, body: r("not found\n")),
            RequestKind(bytes: r("GET http://f/big?q HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"), status: 200, body: ServiceUnderTest.bigBody, closes: true),
            RequestKind(bytes: r("GET / HTTP/1.0\r\n\r\n"), status: 200, body: a, closes: true),
        ]
    }()
}

/// A parsed response.
struct Response {
    let status: Int
    let body: [UInt8]
}

/// Parses responses from `bytes` in order, given which requests they answer are HEAD. Stops at
/// an incomplete one; a malformed one traps when `strict`, and ends the parse otherwise (after
/// raw bytes, which may spell a HEAD request of their own, which answer is which is unknown).
func parseResponses(_ bytes: [UInt8], heads: [Bool], strict: Bool) -> (responses: [Response], consumed: Int) {
    func check(_ condition: Bool, _ message: @autoclosure () -> String) -> Bool {
        if !condition && strict { preconditionFailure(message()) }
        return condition
    }
    var out: [Response] = []
    var i = 0
    let end: [UInt8] = [13, 10, 13, 10]
    while i < bytes.count {
        guard let headEnd = bytes[i...].firstRange(of: end) else {
            _ = check(bytes.count - i < 8192, "a response head of more than 8 KiB")
            break
        }
        let head = Array(bytes[i..<headEnd.lowerBound])
        guard check(head.starts(with: Array("HTTP/1.1 ".utf8)) && head.count >= 12, "malformed status line: \(String(decoding: head.prefix(40), as: UTF8.self))") else { break }
        let status = Int(String(decoding: head[9..<12], as: UTF8.self)) ?? -1
        guard check((100...599).contains(status), "bad status \(status)") else { break }
        if status == 100 {
            i = headEnd.upperBound
            continue
        }
        var length = 0
        var sawLength = false
        for line in String(decoding: head, as: UTF8.self).split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard check(parts.count == 2, "malformed header line \(line)") else { return (out, i) }
            if parts[0].lowercased() == "content-length" {
                guard check(!sawLength, "two Content-Length fields") else { return (out, i) }
                sawLength = true
                length = Int(parts[1].drop { $0 == " " }) ?? -1
                guard check(length >= 0, "bad Content-Length \(parts[1])") else { return (out, i) }
            }
        }
        guard check(sawLength, "a response without Content-Length") else { break }
        let isHEAD = out.count < heads.count && heads[out.count]
        let bodyLength = isHEAD ? 0 : length
        guard headEnd.upperBound + bodyLength <= bytes.count else { break }
        out.append(Response(status: status, body: Array(bytes[headEnd.upperBound..<headEnd.upperBound + bodyLength])))
        i = headEnd.upperBound + bodyLength
    }
    return (out, i)
}

/// Plays one script. Returns 0 (libFuzzer's "keep going"); a broken invariant traps.
func fuzzService(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let engine = ServiceUnderTest.engine
    var pair: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else { return 0 }
    let client = pair[0]
    defer { close(client) }
    do { try engine.enroll(fd: pair[1]) } catch { close(pair[1]); return 0 }
    _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)

    var expected: [RequestKind] = []   // answers owed, in order, while the script is well-formed
    var heads: [Bool] = []             // which requests are HEAD, all of them
    var requestsSent = 0               // complete requests of any kind, for the upper bound
    var rawSent = false                // after raw bytes only the bounds are checked
    var rawBytes = 0
    var closedByRequest = false        // a request asked the server to close after it
    var received: [UInt8] = []
    var pending: [UInt8] = []
    var serverClosed = false           // it answered an error and closed: what is left goes nowhere
    var buf = [UInt8](repeating: 0, count: 65536)

    func pump(waitMs: Int32) {
        // Send what is pending and take what arrives; never block on one side alone.
        var pfd = pollfd(fd: client, events: Int16(POLLIN) | (pending.isEmpty ? 0 : Int16(POLLOUT)), revents: 0)
        guard poll(&pfd, 1, waitMs) > 0 else { return }
        if pfd.revents & Int16(POLLIN) != 0 {
            let n = recv(client, &buf, buf.count, 0)
            if n > 0 { received += buf[0..<n] }
        }
        if !pending.isEmpty && pfd.revents & (Int16(POLLOUT) | Int16(POLLERR) | Int16(POLLHUP)) != 0 {
            let n = pending.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                pending.removeFirst(n)
            } else if n < 0 && (errno == EPIPE || errno == ECONNRESET) {
                serverClosed = true
                pending.removeAll()
            }
        }
    }

    var i = 0
    func next() -> Int { defer { i += 1 }; return i < size ? Int(data[i]) : 0 }
    while i < size && !closedByRequest {
        let op = next()
        switch op % 8 {
        case 0, 1, 2, 3:
            let kind = RequestKind.all[next() % RequestKind.all.count]
            pending += kind.bytes
            requestsSent += 1
            heads.append(kind.isHEAD)
            if !rawSent { expected.append(kind) }
            if kind.closes { closedByRequest = true }
        case 4:
            let count = next() % 48
            for _ in 0..<count { pending.append(UInt8(next())) }
            rawBytes += count
            rawSent = rawSent || count > 0
        case 5:
            pump(waitMs: 0)  // send some now: requests split across reads
        case 6:
            usleep(UInt32(next() % 4) * 250)  // a pause: the server drains or waits
        default:
            for _ in 0..<8 { pump(waitMs: 0) }  // read what has arrived
        }
    }
    // Send the rest, half-close, and take everything until the server closes.
    let deadline = gnet_monotonic_ns() + 5_000_000_000
    while !pending.isEmpty && gnet_monotonic_ns() < deadline { pump(waitMs: 10) }
    precondition(pending.isEmpty, "the server stopped reading (\(pending.count) bytes not taken in 5 s)")
    precondition(!serverClosed || rawSent || closedByRequest, "the server closed a well-formed exchange")
    shutdown(client, Int32(SHUT_WR))
    var sawEOF = false
    while gnet_monotonic_ns() < deadline {
        var pfd = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 50) > 0 else { continue }
        let n = recv(client, &buf, buf.count, 0)
        if n > 0 { received += buf[0..<n]; continue }
        sawEOF = true
        break
    }
    let (responses, consumed) = parseResponses(received, heads: heads, strict: !rawSent)
    // Raw bytes can spell requests too (at least 16 bytes each), and one error is answered.
    precondition(responses.count <= requestsSent + rawBytes / 16 + 1, "\(responses.count) responses to \(requestsSent) requests and \(rawBytes) raw bytes")
    precondition(sawEOF, "no end of the exchange within 5 s of the half-close (\(responses.count) answers)")
    if !rawSent {
        // Everything was well-formed: every answer, exactly, in order, and nothing after.
        precondition(consumed == received.count, "\(received.count - consumed) bytes after the last response (\(responses.count) of \(expected.count)): \(String(decoding: received[consumed...].prefix(300), as: UTF8.self))")
        precondition(responses.count == expected.count, "\(responses.count) answers to \(expected.count) requests: "
                     + "answers \(responses.map { "\($0.status)/\($0.body.count)" }), expected \(expected.map { "\($0.status)/\($0.body.count)" })")
        for (k, (r, e)) in zip(responses, expected).enumerated() {
            precondition(r.status == e.status && r.body == e.body,
                         "answer \(k): \(r.status) with \(r.body.count) bytes, expected \(e.status) with \(e.body.count)")
        }
    }
    return 0
}
