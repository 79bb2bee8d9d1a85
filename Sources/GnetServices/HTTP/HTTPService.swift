#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A fixed response served for every request whose path starts with `prefix` (the longest
/// matching prefix wins; `/` catches the rest). Every method is answered; a request body is
/// read and discarded.
public struct HTTPRoute: Sendable {
    public var prefix: String
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// Serve files from this directory instead of `body` (sendfile, 304, single ranges, index.html;
    /// nothing outside the directory is ever served).
    public var root: String?

    public init(prefix: String, status: Int = 200, contentType: String = "text/plain", body: [UInt8], root: String? = nil) {
        self.prefix = prefix; self.status = status; self.contentType = contentType; self.body = body; self.root = root
    }
}

/// Timeouts and limits of the `http` service.
public struct HTTPServiceOptions: @unchecked Sendable {
    /// The whole request head must arrive within this (slow clients get 408 and a close).
    public var headerTimeout: Duration = .seconds(20)
    /// An idle keep-alive connection is closed after this.
    public var keepaliveTimeout: Duration = .seconds(75)
    /// Largest request body accepted (413 past it).
    public var maxBodySize = 1 << 20
    public var limits = HTTPLimits()
    /// Where to log requests (Common Log Format); nil = no access log.
    public var accessLog: AccessLog? = nil
    public init() {}
}

/// The `http` service: HTTP/1.1 with keep-alive, pipelining (responses strictly in request
/// order), `Connection: close`, HTTP/1.0, `Expect: 100-continue`, `HEAD`, `Content-Length` and
/// chunked request bodies; malformed or ambiguous requests get 400 (or 413/414/431/501/505) and
/// a close; slow heads get 408.
public final class HTTPService: EventHandler {
    private let routes: [(prefix: [UInt8], head: [UInt8], body: [UInt8], status: Int, files: StaticFiles?)]
    private let options: HTTPServiceOptions
    /// The timeouts in nanoseconds, converted once (Duration arithmetic is 128-bit).
    private let headerTimeoutNanos: Int64
    private let keepaliveTimeoutNanos: Int64
    private let date = HTTPDate()
    /// Only the loop thread touches the service: no dynamic exclusivity checks.
    private var scratch: [UInt8] = []

    /// Per-connection progress.
    final class Exchange {
        enum Phase { case head, body(remaining: Int), chunked(ChunkedBodyDecoder) }
        var phase = Phase.head
        var keepAlive = true
        var isHead = false
        var route = 0
        /// Monotonic ns by which the current wait must end.
        var deadline: Int64 = 0
        /// Between requests on a kept-alive connection.
        var idle = false
        /// The request's target and the headers a file route needs.
        var target = ""
        var ifModifiedSince: String? = nil
        var range: String? = nil
        /// A file being sent with sendfile: descriptor, next offset, bytes left.
        var file: (fd: Int32, offset: Int, remaining: Int)? = nil
        /// For the access log: the peer (looked up once per connection), the request line.
        var client: [UInt8] = []
        var method = ""
        var minorVersion = 1
    }

    public init(routes: [HTTPRoute], options: HTTPServiceOptions = HTTPServiceOptions()) {
        let sorted = routes.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
        self.routes = sorted.map { r in
            let head = "HTTP/1.1 \(r.status) \(HTTPService.reason(r.status))\r\nServer: gnet\r\nContent-Type: \(r.contentType)\r\nContent-Length: \(r.body.count)\r\n"
            return (Array(r.prefix.utf8), Array(head.utf8), r.body, r.status, r.root.flatMap { StaticFiles(root: $0) })
        }
        self.options = options
        headerTimeoutNanos = options.headerTimeout.nanoseconds
        keepaliveTimeoutNanos = options.keepaliveTimeout.nanoseconds
        scratch.reserveCapacity(4096)
    }

    public func onBoot(_ engine: Engine) -> Action {
        guard let log = options.accessLog else { return .none }
        let loop = engine.eventLoop
        func tick() {
            log.flush()
            loop.schedule(after: .seconds(1)) { tick() }
        }
        loop.schedule(after: .seconds(1)) { tick() }
        return .none
    }

    public func onShutdown(_ engine: Engine) { options.accessLog?.flush() }

    public func onOpen(_ c: Conn) -> Action {
        let x = Exchange()
        c.context = x
        if options.accessLog != nil {
            let peer = c.remoteAddress?.description ?? "-"
            x.client = Array((peer.hasPrefix("[") ? String(peer[peer.index(after: peer.startIndex)..<(peer.lastIndex(of: "]") ?? peer.endIndex)])
                                                : String(peer.prefix { $0 != ":" })).utf8)
        }
        x.deadline = gnet_monotonic_ns() + headerTimeoutNanos
        watch(c, x, at: x.deadline)
        return .none
    }

    /// One timer per connection, re-armed lazily: requests only move `x.deadline` (no timer or
    /// allocation per request). When it fires past the deadline, a connection waiting for a head
    /// it has started (or its first) gets 408; an idle kept-alive one is closed.
    private func watch(_ c: Conn, _ x: Exchange, at deadline: Int64) {
        let id = c.id
        let loop = c.eventLoop
        loop.schedule(after: .nanoseconds(max(0, deadline - gnet_monotonic_ns()))) { [weak x] in
            guard let x, let c = loop.conn(id) else { return }
            if gnet_monotonic_ns() < x.deadline || x.file != nil {
                self.watch(c, x, at: x.deadline)
                return
            }
            guard case .head = x.phase else {
                self.fail(c, 408, "request body not received in time")
                return
            }
            if x.idle && c.inboundBuffered == 0 { c.close() } else { self.fail(c, 408, "request head not received in time") }
        }
    }

    public func onTraffic(_ c: Conn) -> Action {
        guard let x = c.context as? Exchange else { return .close }
        // Responses to pipelined requests are gathered and written with one syscall.
        scratch.removeAll(keepingCapacity: true)
        defer { flush(c) }
        while c.isOpen && x.file == nil {  // a file in flight holds back pipelined answers
            switch x.phase {
            case .head:
                guard c.inboundBuffered > 0, let view = try? c.peek() else { return .none }
                if x.idle {
                    // A new request has begun: its head must arrive within the header timeout.
                    x.idle = false
                    x.deadline = gnet_monotonic_ns() + headerTimeoutNanos
                }
                switch HTTPHeadParser.parse(view, limits: options.limits) {
                case .incomplete:
                    return .none
                case .failed(let e):
                    fail(c, e.status, e.reason)
                    return .none
                case .complete(let head, let length):
                    c.discard(length)
                    if !start(c, x, head) { return .none }
                }
            case .body(let remaining):
                let n = c.discard(remaining)
                if n < remaining { x.phase = .body(remaining: remaining - n); return .none }
                respond(c, x)
            case .chunked(var decoder):
                guard let view = try? c.peek() else { return .none }
                let result = decoder.consume(view)
                c.discard(result.consumed)
                switch result.state {
                case .needMore:
                    x.phase = .chunked(decoder)
                    return .none
                case .done:
                    respond(c, x)
                case .invalid(let reason):
                    fail(c, 400, reason)
                    return .none
                case .tooLarge:
                    fail(c, 413, "request body too large")
                    return .none
                }
            }
        }
        return .none
    }

    /// Routes a parsed head and sets up reading its body. False when the request was refused.
    private func start(_ c: Conn, _ x: Exchange, _ head: HTTPRequestHead) -> Bool {
        x.keepAlive = head.keepAlive
        x.isHead = head.method == "HEAD"
        x.deadline = gnet_monotonic_ns() + headerTimeoutNanos  // the body gets a window of its own
        x.route = route(head.target)
        x.target = head.target
        x.method = head.method
        x.minorVersion = head.minorVersion
        x.ifModifiedSince = head.ifModifiedSince
        x.range = head.range
        let expectsBody = head.chunked || (head.contentLength ?? 0) > 0
        if let length = head.contentLength, length > options.maxBodySize {
            fail(c, 413, "request body too large")
            return false
        }
        if head.expectContinue && expectsBody && head.minorVersion == 1 {
            flush(c)
            _ = try? c.write("HTTP/1.1 100 Continue\r\n\r\n")
        }
        if head.chunked {
            x.phase = .chunked(ChunkedBodyDecoder(maxBody: options.maxBodySize))
        } else if let length = head.contentLength, length > 0 {
            x.phase = .body(remaining: length)
        } else {
            respond(c, x)
        }
        return true
    }

    private func route(_ target: String) -> Int {
        var target = target
        return target.withUTF8 { t in
            let path = t.prefix { $0 != 0x3F }  // without the query
            for (i, r) in routes.enumerated() where path.starts(with: r.prefix) { return i }
            return -1
        }
    }

    /// Writes what `respond` gathered.
    private func flush(_ c: Conn) {
        guard !scratch.isEmpty else { return }
        _ = try? c.write(scratch)
        scratch.removeAll(keepingCapacity: true)
    }

    /// Adds the response of the current request to the batch and gets ready for the next one.
    private func respond(_ c: Conn, _ x: Exchange) {
        defer { if x.file == nil { x.method = ""; x.target = "" } }
        x.phase = .head
        let keepAlive = x.keepAlive
        var body: [UInt8] = []
        if x.route >= 0, let files = routes[x.route].files {
            serveFile(c, x, files, prefixLength: routes[x.route].prefix.count)
            return
        }
        if x.route >= 0 {
            scratch += routes[x.route].head
            body = routes[x.route].body
        } else {
            body = Array("not found\n".utf8)
            scratch += Array("HTTP/1.1 404 Not Found\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\n".utf8)
        }
        scratch += date.header()
        if !keepAlive { scratch += HTTPService.connectionClose }
        scratch += [13, 10]
        if !x.isHead { scratch += body }
        options.accessLog?.record(client: x.client, method: x.method, target: x.target, minorVersion: x.minorVersion,
                                  status: x.route >= 0 ? routes[x.route].status : 404, bytes: x.isHead ? 0 : body.count)
        if scratch.count >= 64 * 1024 { flush(c) }
        if keepAlive {
            x.idle = true
            x.deadline = gnet_monotonic_ns() + keepaliveTimeoutNanos
        } else {
            flush(c)
            c.close()
        }
    }

    // MARK: files

    private func serveFile(_ c: Conn, _ x: Exchange, _ files: StaticFiles, prefixLength: Int) {
        let path = x.target.utf8.prefix { $0 != 0x3F }
        let relative = Substring(String(decoding: path.dropFirst(prefixLength), as: UTF8.self))
        var head = ""
        switch files.open(relative) {
        case .forbidden:
            plain(c, x, 403, "forbidden\n")
        case .notFound:
            plain(c, x, 404, "not found\n")
        case .file(let fd, let size, let modified, let type):
            let lastModified = StaticFiles.httpDate(modified)
            if let ims = x.ifModifiedSince.flatMap(StaticFiles.parseHTTPDate), modified <= ims {
                close(fd)
                head = "HTTP/1.1 304 Not Modified\r\nServer: gnet\r\nLast-Modified: \(lastModified)\r\n"
                finishHead(c, x, head)
                return
            }
            var first = 0, length = size, status = "200 OK", extra = ""
            switch StaticFiles.range(x.range, size: size) {
            case .ignore: break
            case .range(let a, let b):
                first = a; length = b - a + 1; status = "206 Partial Content"
                extra = "Content-Range: bytes \(a)-\(b)/\(size)\r\n"
            case .unsatisfiable:
                close(fd)
                finishHead(c, x, "HTTP/1.1 416 Range Not Satisfiable\r\nServer: gnet\r\nContent-Range: bytes */\(size)\r\nContent-Length: 0\r\n")
                return
            }
            head = "HTTP/1.1 \(status)\r\nServer: gnet\r\nContent-Type: \(type)\r\nContent-Length: \(length)\r\nLast-Modified: \(lastModified)\r\nAccept-Ranges: bytes\r\n" + extra
            finishHead(c, x, head, keepFile: x.isHead || length == 0 ? nil : (fd, first, length))
            if x.isHead || length == 0 { close(fd) }
        }
    }

    /// A short text response on a file route (403/404), connection kept as the client asked.
    private func plain(_ c: Conn, _ x: Exchange, _ status: Int, _ text: String) {
        let head = "HTTP/1.1 \(status) \(HTTPService.reason(status))\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\n"
        finishHead(c, x, head, body: x.isHead ? "" : text)
    }

    /// Ends a head (Date, Connection, blank line), adds a small body, then either sends the
    /// file or goes on to the next request.
    private func finishHead(_ c: Conn, _ x: Exchange, _ head: String, body: String = "", keepFile: (Int32, Int, Int)? = nil) {
        if let log = options.accessLog {
            let status = Int(head.dropFirst(9).prefix(3)) ?? 0
            log.record(client: x.client, method: x.method, target: x.target, minorVersion: x.minorVersion, status: status,
                       bytes: keepFile?.2 ?? body.utf8.count)
        }
        scratch += Array(head.utf8)
        scratch += date.header()
        if !x.keepAlive { scratch += HTTPService.connectionClose }
        scratch += [13, 10]
        scratch += Array(body.utf8)
        if let (fd, offset, length) = keepFile {
            flush(c)
            x.file = (fd, offset, length)
            sendFile(c, x)
            return
        }
        afterResponse(c, x)
    }

    /// Sends what the kernel takes of the current file; asks to be told when it can take more.
    private func sendFile(_ c: Conn, _ x: Exchange) {
        while let f = x.file {
            let n: Int
            do { n = try c.sendFile(f.fd, offset: f.offset, count: min(f.remaining, 1 << 20)) } catch {
                close(f.fd)
                x.file = nil
                c.close()
                return
            }
            if n == 0 {
                c.notifyWritable()
                return
            }
            if n == f.remaining {
                close(f.fd)
                x.file = nil
                afterResponse(c, x)
                if c.inboundBuffered > 0 { c.wake() }  // pipelined requests waited for the file
                return
            }
            x.file = (f.fd, f.offset + n, f.remaining - n)
        }
    }

    public func onWritable(_ c: Conn) -> Action {
        if let x = c.context as? Exchange, x.file != nil { sendFile(c, x) }
        return .none
    }

    public func onClose(_ c: Conn, error: GnetError?) -> Action {
        if let x = c.context as? Exchange, let f = x.file {
            close(f.fd)
            x.file = nil
        }
        return .none
    }

    private func afterResponse(_ c: Conn, _ x: Exchange) {
        x.phase = .head
        x.method = ""; x.target = ""
        if x.keepAlive {
            x.idle = true
            x.deadline = gnet_monotonic_ns() + keepaliveTimeoutNanos
        } else {
            flush(c)
            c.close()
        }
    }

    /// Answers `status` with a short text and closes the connection.
    private func fail(_ c: Conn, _ status: Int, _ reason: String) {
        flush(c)  // earlier pipelined responses first
        if let log = options.accessLog, let x = c.context as? Exchange {
            log.record(client: x.client, method: x.method.isEmpty ? "-" : x.method, target: x.target.isEmpty ? "-" : x.target,
                       minorVersion: x.minorVersion, status: status, bytes: 0)
        }
        if let x = c.context as? Exchange { x.phase = .head }
        let body = "\(status) \(HTTPService.reason(status)): \(reason)\n"
        var text = "HTTP/1.1 \(status) \(HTTPService.reason(status))\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        text += String(decoding: date.header(), as: UTF8.self) + "\r\n" + body
        _ = try? c.write(text)
        c.discard()
        c.close()
    }

    static let connectionClose = Array("Connection: close\r\n".utf8)

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"; case 201: "Created"; case 204: "No Content"; case 301: "Moved Permanently"; case 302: "Found"
        case 304: "Not Modified"; case 400: "Bad Request"; case 403: "Forbidden"; case 404: "Not Found"
        case 408: "Request Timeout"; case 413: "Content Too Large"; case 414: "URI Too Long"
        case 431: "Request Header Fields Too Large"; case 500: "Internal Server Error"; case 501: "Not Implemented"
        case 503: "Service Unavailable"; case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
