#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A fixed response served for every request whose path starts with `prefix` (the longest
/// matching prefix wins; `/` catches the rest). Every method is answered; a request body is
/// read and discarded.
public struct HTTPRoute: Sendable {
    /// The path prefix this route answers (`/` catches the rest).
    public var prefix: String
    /// The fixed response's status.
    public var status: Int
    /// The fixed response's `Content-Type`.
    public var contentType: String
    /// The fixed response's body.
    public var body: [UInt8]
    /// Serve files from this directory instead of `body` (sendfile, 304, single ranges, index.html;
    /// nothing outside the directory is ever served).
    public var root: String?

    /// A fixed response, or with `root` the files under that directory.
    public init(prefix: String, status: Int = 200, contentType: String = "text/plain", body: [UInt8], root: String? = nil) {
        self.prefix = prefix; self.status = status; self.contentType = contentType; self.body = body; self.root = root
    }
}

/// Where the http service counts what it answers, in memory the caller owns (a daemon's stats
/// page), with relaxed stores from the loop thread: no syscall or allocation per request.
public struct HTTPMetrics: @unchecked Sendable {
    /// Five counters: responses with status 1xx, 2xx, 3xx, 4xx and 5xx; nil counts nowhere.
    public var responsesByClass: UnsafeMutablePointer<UInt64>? = nil
    /// Requests refused with an error and a close: malformed, too large, too slow (400, 408,
    /// 413, 414, 431, 501, 505); nil counts nowhere.
    public var refused: UnsafeMutablePointer<UInt64>? = nil
    /// Time from a request's first bytes read to its response handed to the kernel.
    public var duration = DurationHistogram(base: nil)
    /// Counts nowhere.
    public init() {}
}

/// Timeouts and limits of the `http` service.
public struct HTTPServiceOptions: @unchecked Sendable {
    /// The whole request head must arrive within this (slow clients get 408 and a close).
    public var headerTimeout: Duration = .seconds(20)
    /// An idle keep-alive connection is closed after this.
    public var keepaliveTimeout: Duration = .seconds(75)
    /// A client that takes none of the response waiting for it (buffered output or a file being
    /// sent) for this long is disconnected (nginx's `send_timeout`). A slow reader that keeps
    /// reading is never cut off.
    public var sendTimeout: Duration = .seconds(60)
    /// How long a small file (up to 256 KiB, 32 MiB in all per service) read into memory is
    /// served from there before it is looked at again; zero turns the file cache off.
    public var fileCacheValid: Duration = .seconds(1)
    /// Where the service reports what it cannot answer with a status (a file that shrank while
    /// it was sent, a client that stopped reading).
    public var logger: any GnetLogger = StandardErrorLogger(level: .info)
    /// Largest request body accepted (413 past it).
    public var maxBodySize = 1 << 20
    /// Request-line, head and header-count limits.
    public var limits = HTTPLimits()
    /// Where to log requests (Common Log Format); nil = no access log.
    public var accessLog: AccessLog? = nil
    /// Where to count responses by status class, refused requests and request durations;
    /// counts nowhere by default.
    public var metrics = HTTPMetrics()
    /// When the worker begins to drain, a kept-alive connection waiting for its next request is
    /// given this long before it is closed: a request the client sent as draining began (on
    /// the wire, not yet read) is answered, with `Connection: close`, instead of meeting a
    /// closed connection. Zero closes idle connections at once.
    public var drainIdleGrace: Duration = .seconds(1)
    /// The defaults: 20 s header timeout, 75 s keep-alive timeout, 60 s send timeout, 1 MiB
    /// bodies, no access log.
    public init() {}
}

/// The `http` service: HTTP/1.1 with keep-alive, pipelining (responses strictly in request
/// order), `Connection: close`, HTTP/1.0, `Expect: 100-continue`, `HEAD`, `Content-Length` and
/// chunked request bodies; malformed or ambiguous requests get 400 (or 413/414/431/501/505) and
/// a close; slow heads get 408.
public final class HTTPService: EventHandler {
    /// A route ready to answer. Its whole fixed response (status line, headers, the current
    /// `Date`, blank line, body) is rebuilt once a second in `table`, so a
    /// keep-alive answer is one copy into the batch.
    private struct PreparedRoute {
        let prefix: [UInt8]
        let head: [UInt8]
        let body: [UInt8]
        let status: Int
        let files: StaticFiles?
    }
    private let routes: [PreparedRoute]
    /// The same routes for the per-request path: prefixes and prepared responses.
    private let table: RouteTable
    private let notFound: PreparedRoute
    private let options: HTTPServiceOptions
    private let accessLog: AccessLog?
    /// The timeouts in nanoseconds, converted once (Duration arithmetic is 128-bit).
    private let headerTimeoutNanos: Int64
    private let keepaliveTimeoutNanos: Int64
    private let sendTimeoutNanos: Int64
    private let drainIdleGraceNanos: Int64
    private let date = HTTPDate()
    /// What changes from request to request. The service runs on one loop thread; keeping its
    /// mutable state behind a pointer spares every request Swift's dynamic exclusivity checks
    /// on class properties (some 50 instructions each).
    private struct LoopState: ~Copyable {
        /// Responses gathered during one `onTraffic`, written with one syscall.
        var batch = ResponseBatch(capacity: 64 * 1024)
        /// The second `table`'s prepared responses carry in their `Date`.
        var second = -1
        /// The worker is draining: every response closes its connection.
        var draining = false
        /// Small files answered from memory.
        var files: FileCache
        /// Monotonic ns at the start of the current `onTraffic`.
        var now: Int64 = 0
        /// Responses in the batch not yet in the duration histogram, and when the oldest of
        /// their requests began (the others began at `now`).
        var answeredInBatch: UInt64 = 0
        var oldestInBatch: Int64 = 0
        /// `options.metrics`, kept here: reading it through `options` copies the options (and
        /// retains what they hold) on every request.
        var metrics = HTTPMetrics()
        /// The connection's outbound buffer may be at its cap: set by every write, so that the
        /// check before each request costs one load, not a call.
        var mayBeFull = true
    }
    private let state: UnsafeMutablePointer<LoopState>

    /// Per-connection progress.
    final class Exchange {
        /// Reading a head, a body (by length or chunked), or holding the answer to a request whose
        /// body has been read until the output has room (an interim `100 Continue` can fill it
        /// between the request's head and its answer).
        enum Phase { case head, body(remaining: Int), chunked(ChunkedBodyDecoder), answerOwed }
        var phase = Phase.head
        /// Monotonic ns by which the current wait must end.
        var deadline: Int64 = 0
        /// Between requests on a kept-alive connection.
        var idle = false
        /// Monotonic ns when the current request's first bytes were read (for its duration).
        var requestStarted: Int64 = 0
        /// A request whose body is still arriving: its head bytes and layout, kept for the
        /// response (copied only for requests with a body).
        var pendingHead: [UInt8] = []
        var pendingLayout = HTTPHeadLayout()
        /// A file being sent with sendfile, and whether the connection stays open after it.
        var file: FileTransfer? = nil
        var keepAliveAfterFile = true
        /// While the client has a response waiting (buffered output, a file): `Conn.bytesSent`
        /// when last looked at, and when it last moved (0 = not waiting).
        var sentMark: UInt64 = 0
        var sentMovedAt: Int64 = 0
        /// A send-timeout timer is armed (`watchSend`).
        var sendWatched = false
        /// For the access log: the peer, looked up once per connection.
        var client: [UInt8] = []
    }

    /// File roots that could not be opened, with the reason (`"/srv/www: Permission denied"`).
    /// Their routes answer 500; a daemon should refuse to serve with any (gnetd's workers do).
    public private(set) var unavailableRoots: [String] = []

    /// Serves `routes` (the longest matching prefix answers; 404 when none does).
    public init(routes: [HTTPRoute], options: HTTPServiceOptions = HTTPServiceOptions()) {
        var unavailable: [String] = []
        func prepare(prefix: String, status: Int, contentType: String, body: [UInt8], root: String?) -> PreparedRoute {
            var files: StaticFiles? = nil
            if let root {
                files = StaticFiles(root: root)
                if files == nil {
                    // Never the fixed (empty) answer in its place: a route whose files cannot be
                    // reached says so.
                    unavailable.append("\(root): \(String(cString: strerror(errno)))")
                    return prepare(prefix: prefix, status: 500, contentType: "text/plain",
                                   body: Array("500 Internal Server Error: the files of this route cannot be opened\n".utf8), root: nil)
                }
            }
            let head = "HTTP/1.1 \(status) \(HTTPService.reason(status))\r\nServer: gnet\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            return PreparedRoute(prefix: Array(prefix.utf8), head: Array(head.utf8), body: body, status: status, files: files)
        }
        self.routes = routes.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
            .map { prepare(prefix: $0.prefix, status: $0.status, contentType: $0.contentType, body: $0.body, root: $0.root) }
        notFound = prepare(prefix: "", status: 404, contentType: "text/plain", body: Array("not found\n".utf8), root: nil)
        self.options = options
        accessLog = options.accessLog
        headerTimeoutNanos = options.headerTimeout.nanoseconds
        keepaliveTimeoutNanos = options.keepaliveTimeout.nanoseconds
        sendTimeoutNanos = options.sendTimeout.nanoseconds
        drainIdleGraceNanos = max(0, options.drainIdleGrace.nanoseconds)
        state = .allocate(capacity: 1)
        state.initialize(to: LoopState(files: FileCache(valid: options.fileCacheValid)))
        state.pointee.metrics = options.metrics
        table = RouteTable(self.routes.map { ($0.prefix, $0.status, $0.body.count, $0.files != nil) })
        if let classes = options.metrics.responsesByClass {
            for i in 0..<table.entries.count where (100..<600).contains(table.entries[i].status) {
                table.entries[i].classCounter = classes + (table.entries[i].status / 100 - 1)
            }
        }
        unavailableRoots = unavailable
    }

    deinit {
        for r in routes { r.files?.close() }
        state.deinitialize(count: 1)  // its response batch and file cache free themselves
        state.deallocate()
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

    /// Draining, without the race of closing a kept-alive connection while the client's next
    /// request is on its way: each connection's next answer — the last of the requests it has
    /// sent so far, when they are pipelined — carries `Connection: close`, and the connection
    /// closes after it; one that sends nothing is closed once it has been idle for
    /// `drainIdleGrace`. Requests answered are never cut off, and the worker is soon empty.
    public func beginDraining(_ loop: EventLoop) {
        state.pointee.draining = true
        let closeAt = gnet_monotonic_ns() + drainIdleGraceNanos
        loop.forEachConnection { c in
            guard let x = c.context as? Exchange, waitsForRequest(c, x) else { return }
            if drainIdleGraceNanos == 0 {
                c.close()
            } else if closeAt < x.deadline {
                x.deadline = closeAt
                watch(c, x, at: closeAt)
            }
        }
    }

    public func onOpen(_ c: Conn) -> Action {
        let x = Exchange()
        c.context = x
        if options.accessLog != nil {
            let peer = c.remoteAddress?.description ?? "-"
            x.client = Array((peer.hasPrefix("[") ? String(peer[peer.index(after: peer.startIndex)..<(peer.lastIndex(of: "]") ?? peer.endIndex)])
                                                : String(peer.prefix { $0 != ":" })).utf8)
        }
        x.requestStarted = gnet_monotonic_ns()
        x.deadline = x.requestStarted + headerTimeoutNanos
        watch(c, x, at: x.deadline)
        return .none
    }

    /// One timer per connection, re-armed lazily: requests only move `x.deadline` (no timer or
    /// allocation per request). When it fires past the deadline: a client with a response
    /// waiting for it is given `send_timeout` from the last byte it took; otherwise a
    /// connection waiting for a head it has started (or its first) gets 408, and an idle
    /// kept-alive one is closed.
    private func watch(_ c: Conn, _ x: Exchange, at deadline: Int64) {
        let id = c.id
        let loop = c.eventLoop
        // The closure holds the connection's id, not the Exchange: a weak reference would move
        // the Exchange's reference counts to a side table, slowing every retain and release.
        loop.schedule(after: .nanoseconds(max(0, deadline - gnet_monotonic_ns()))) {
            guard let c = loop.conn(id), let x = c.context as? Exchange else { return }
            let now = gnet_monotonic_ns()
            if self.waitingToSend(c, x) {
                // The client has a response waiting: `watchSend` times it.
                self.watchSend(c, x)
                self.watch(c, x, at: max(x.deadline, now + self.sendTimeoutNanos))
                return
            }
            if now < x.deadline {
                self.watch(c, x, at: x.deadline)
                return
            }
            guard case .head = x.phase else {
                self.fail(c, 408, "request body not received in time")
                return
            }
            if self.waitsForRequest(c, x) {
                c.close()
            } else if x.idle && c.inboundBuffered == 0 {
                self.watch(c, x, at: gnet_monotonic_ns() + self.headerTimeoutNanos)  // a request is in the socket: read next
            } else {
                self.fail(c, 408, "request head not received in time")
            }
        }
    }

    /// The client has a response waiting for it: buffered output, or a file on its way.
    private func waitingToSend(_ c: Conn, _ x: Exchange) -> Bool { x.file != nil || c.outboundBuffered > 0 }

    /// Times a client with a response waiting for it: it may take as long as it likes, as long
    /// as it keeps taking bytes; one that takes none for `send_timeout` is disconnected. Armed
    /// whenever output starts to wait (a file that does not go out at once, a full buffer), so
    /// the limit holds whatever the other deadlines are; one timer at a time per connection.
    private func watchSend(_ c: Conn, _ x: Exchange, after delay: Int64? = nil) {
        guard !x.sendWatched else { return }
        x.sendWatched = true
        if x.sentMovedAt == 0 {
            x.sentMark = c.bytesSent
            x.sentMovedAt = gnet_monotonic_ns()
        }
        let id = c.id
        let loop = c.eventLoop
        loop.schedule(after: .nanoseconds(delay ?? sendTimeoutNanos)) {
            guard let c = loop.conn(id), let x = c.context as? Exchange else { return }
            x.sendWatched = false
            guard self.waitingToSend(c, x) else {
                x.sentMovedAt = 0
                return
            }
            let now = gnet_monotonic_ns()
            let sent = c.bytesSent
            if sent != x.sentMark {
                x.sentMark = sent
                x.sentMovedAt = now
            }
            let due = x.sentMovedAt + self.sendTimeoutNanos
            if now < due {
                self.watchSend(c, x, after: due - now)
            } else {
                self.options.logger.log(.info, "http: client \(c.remoteAddress?.description ?? "?") took no response bytes for \(self.options.sendTimeout); connection closed")
                self.abandon(c, x)
            }
        }
    }

    /// A kept-alive connection between requests that may be closed: nothing of the next
    /// request buffered, nor waiting unread in the socket (closing over unread bytes would
    /// reset the connection and lose that request; it is read next instead).
    private func waitsForRequest(_ c: Conn, _ x: Exchange) -> Bool {
        guard x.idle, x.file == nil, c.inboundBuffered == 0, case .head = x.phase else { return false }
        var byte: UInt8 = 0
        return recv(c.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
    }

    public func onTraffic(_ c: Conn) -> Action {
        guard let x = c.context as? Exchange else { return .close }
        refreshResponses()
        let draining = state.pointee.draining  // while draining, the last answer buffered closes its connection
        let now = gnet_monotonic_ns()
        state.pointee.now = now
        // Entered with room: the loop reads no connection whose output is full, and hands input
        // back (resume, wake) only once it has drained. Only a write here can fill it.
        state.pointee.mayBeFull = false
        state.pointee.oldestInBatch = x.idle ? now : x.requestStarted
        var answered = false
        defer {
            flush(c)
            if answered { betweenRequests(c, x, now: now) }
        }
        while c.isOpen && x.file == nil {  // a file in flight holds back pipelined answers
            switch x.phase {
            case .head:
                guard c.inboundBuffered > 0, let view = try? c.peek() else { return .none }
                if x.idle {
                    // A new request has begun: its head must arrive within the header timeout.
                    x.idle = false
                    x.requestStarted = now
                    x.deadline = now + headerTimeoutNanos
                }
                // Every complete head in the view is answered before the bytes are let go
                // (one peek and one discard per batch of pipelined requests).
                var offset = 0
                var layout = HTTPHeadLayout()
                while offset < view.count {
                    if state.pointee.mayBeFull {
                        if c.outboundIsFull {
                            // Backpressure: no answer is dropped or reordered. The requests left
                            // stay buffered and are answered once the client has read enough (the
                            // loop calls onTraffic again then). A full buffer only ever follows a
                            // flush, which leaves the batch empty.
                            assert(state.pointee.batch.isEmpty)
                            c.discard(offset)
                            watchSend(c, x)
                            return .none
                        }
                        state.pointee.mayBeFull = false
                    }
                    let rest = UnsafeRawBufferPointer(rebasing: view[offset...])
                    switch HTTPHeadParser.scan(rest, limits: options.limits, into: &layout) {
                    case .incomplete:
                        c.discard(offset)
                        return .none
                    case .failed(let e):
                        fail(c, e.status, e.reason)
                        return .none
                    case .complete(let length):
                        // Draining: the connection closes after the last request the client
                        // has sent; those pipelined behind it are answered first.
                        if draining && offset + length == view.count { layout.keepAlive = false }
                        let head = UnsafeRawBufferPointer(rebasing: rest[0..<length])
                        offset += length
                        if layout.hasBody {
                            let accepted = startBody(c, x, layout, head, now: now)
                            c.discard(offset)
                            if !accepted { return .none }
                            offset = -1  // on to the body
                        } else {
                            respond(c, x, layout, head)
                            answered = true
                            if x.file != nil || !c.isOpen { c.discard(offset); return .none }
                        }
                    }
                    if offset < 0 { break }
                }
                if offset > 0 { c.discard(offset) }
            case .body(let remaining):
                let n = c.discard(remaining)
                if n < remaining { x.phase = .body(remaining: remaining - n); return .none }
                guard respondToPending(c, x) else { return .none }
                answered = true
            case .answerOwed:
                guard respondToPending(c, x) else { return .none }
                answered = true
            case .chunked(var decoder):
                guard let view = try? c.peek() else { return .none }
                let result = decoder.consume(view)
                c.discard(result.consumed)
                switch result.state {
                case .needMore:
                    x.phase = .chunked(decoder)
                    return .none
                case .done:
                    guard respondToPending(c, x) else { return .none }
                    answered = true
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

    /// Rebuilds the routes' whole responses when the second (and so the Date) has changed.
    private func refreshResponses() {
        let second = time(nil)
        guard second != state.pointee.second else { return }
        state.pointee.second = second
        let dateHeader = date.header()
        for i in routes.indices where routes[i].files == nil {
            table.prepare(i, routes[i].head, dateHeader, [13, 10], routes[i].body)
        }
    }

    /// Sets up reading the body of a request (keeping a copy of its head for the response).
    /// False when the request was refused.
    private func startBody(_ c: Conn, _ x: Exchange, _ layout: HTTPHeadLayout, _ head: UnsafeRawBufferPointer, now: Int64) -> Bool {
        x.pendingHead = Array(head)
        x.pendingLayout = layout
        x.deadline = now + headerTimeoutNanos  // the body gets a window of its own
        if let length = layout.contentLength, length > options.maxBodySize {
            fail(c, 413, "request body too large")
            return false
        }
        if layout.expectContinue && layout.minorVersion == 1 {
            state.pointee.batch.append("HTTP/1.1 100 Continue\r\n\r\n")
            flush(c)
        }
        if layout.chunked {
            x.phase = .chunked(ChunkedBodyDecoder(maxBody: options.maxBodySize))
        } else {
            x.phase = .body(remaining: layout.contentLength ?? 0)
        }
        return true
    }

    /// Answers the request whose body has just been read.
    /// After answers on a kept-alive connection: the idle timeout runs from the last one, or the
    /// header timeout when part of the next request is already here.
    private func betweenRequests(_ c: Conn, _ x: Exchange, now: Int64) {
        guard case .head = x.phase, x.file == nil, c.isOpen else { return }
        let partial = c.inboundBuffered > 0
        x.idle = !partial
        x.requestStarted = now
        x.deadline = now + (partial ? headerTimeoutNanos : keepaliveTimeoutNanos)
    }

    /// Answers the request whose body has just been read; false (the answer owed, kept for
    /// later) while the output is full.
    private func respondToPending(_ c: Conn, _ x: Exchange) -> Bool {
        if c.outboundIsFull {
            x.phase = .answerOwed
            watchSend(c, x)
            return false
        }
        x.phase = .head
        if state.pointee.draining && c.inboundBuffered == 0 { x.pendingLayout.keepAlive = false }
        let head = x.pendingHead
        x.pendingHead = []
        head.withUnsafeBytes { respond(c, x, x.pendingLayout, $0) }
        return true
    }

    /// The route for the request: matched on the target as it is (routes start with `/`, so a
    /// target in absolute form matches none), then, off the hot path, on the path of a target in
    /// absolute form.
    @inline(__always)
    private func route(_ head: UnsafeRawBufferPointer, _ layout: HTTPHeadLayout) -> Int {
        guard let base = head.baseAddress else { return -1 }
        let target = layout.target
        let index = table.match((base + target.lowerBound).assumingMemoryBound(to: UInt8.self), count: target.count)
        return index >= 0 ? index : routeAbsolute(head, target)
    }

    /// Routes a target not in origin form (absolute form, `*`), off the hot path.
    @inline(never)
    private func routeAbsolute(_ head: UnsafeRawBufferPointer, _ target: Range<Int>) -> Int {
        let path = HTTPService.originForm(head, target)
        if path == target { return -1 }  // in origin form already: no route
        guard let base = head.baseAddress, !path.isEmpty else {  // `http://host` alone: the path is "/"
            var slash = UInt8(ascii: "/")
            return withUnsafePointer(to: &slash) { table.match($0, count: 1) }
        }
        return table.match((base + path.lowerBound).assumingMemoryBound(to: UInt8.self), count: path.count)
    }

    /// The path-and-query part of a request target: the target itself in origin form
    /// (`/path?q`), the part after the authority in absolute form (`http://host/path?q`, which
    /// a server must accept, RFC 9112 §3.2.2); empty for `http://host` alone (meaning `/`).
    static func originForm(_ head: UnsafeRawBufferPointer, _ target: Range<Int>) -> Range<Int> {
        guard let first = target.first, head[first] != UInt8(ascii: "/") else { return target }
        // The parser admits only `/…`, `*` and http(s)://… targets.
        guard let colon = head[target].firstIndex(of: UInt8(ascii: ":")), colon + 3 <= target.upperBound else { return target }
        let authority = colon + 3  // past "://"
        guard let slash = head[authority..<target.upperBound].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }),
              head[slash] == UInt8(ascii: "/") else {
            return target.upperBound..<target.upperBound  // no path (`http://host?q` too): "/"
        }
        return slash..<target.upperBound
    }

    /// Writes what `respond` gathered, whole. Answers are never skipped: the batch is taken
    /// whole whenever the outbound buffer is below its cap, which `onTraffic` makes sure of
    /// before each answer; a batch that cannot be taken (only an error response to a client
    /// that stopped reading) ends the connection instead.
    /// Not inlined: it is called from a dozen places in `onTraffic`, whose size would
    /// otherwise keep `respond` from being inlined into the request loop.
    @inline(never)
    private func flush(_ c: Conn) {
        if state.pointee.answeredInBatch > 0 { recordDurations() }
        guard !state.pointee.batch.isEmpty else { return }
        defer { state.pointee.batch.removeAll() }
        state.pointee.mayBeFull = true
        do throws(GnetError) {
            try c.write(state.pointee.batch.bytes)
        } catch .outboundBufferFull {
            c.close()
        } catch {
            // The write failed, and the connection is closing with that error.
        }
    }

    /// Counts a response of `status` (its duration is recorded when the batch is written).
    @inline(__always)
    private func answered(status: Int) {
        if let classes = state.pointee.metrics.responsesByClass, status >= 100 && status < 600 {
            gnet_counter_add(classes + (status / 100 - 1), 1)
        }
        state.pointee.answeredInBatch &+= 1
    }

    /// The batch's responses go out now: the oldest request's duration from when it began, the
    /// others' from the start of this `onTraffic` (one clock read per batch, not per request).
    @inline(never)
    private func recordDurations() {
        let end = gnet_monotonic_ns()
        let n = state.pointee.answeredInBatch
        let histogram = state.pointee.metrics.duration
        histogram.record(nanos: end - state.pointee.oldestInBatch)
        if n > 1 { histogram.record(nanos: end - max(state.pointee.now, state.pointee.oldestInBatch), count: n - 1) }
        state.pointee.answeredInBatch = 0
        state.pointee.oldestInBatch = max(state.pointee.now, state.pointee.oldestInBatch)
    }

    /// Adds the response to the request `head` to the batch (or starts sending its file). The
    /// usual case — a kept-alive request to a fixed route — is the prepared response copied
    /// whole, inlined into the request loop; everything else is `respondOtherwise`.
    @inline(__always)
    private func respond(_ c: Conn, _ x: Exchange, _ layout: HTTPHeadLayout, _ head: UnsafeRawBufferPointer) {
        let index = route(head, layout)
        guard layout.keepAlive && index >= 0 else {
            respondOtherwise(c, x, index, layout, head)
            return
        }
        let e = table.entries[index]
        guard let r = e.response else {  // a file route
            respondOtherwise(c, x, index, layout, head)
            return
        }
        // The prepared response, whole or (HEAD) without its body.
        state.pointee.batch.append(r, count: e.responseCount - (layout.isHEAD ? e.bodyCount : 0))
        // Counted as `answered(status:)` does, with the class's counter found once per route
        // (the request loop stays small enough to be inlined whole).
        if let counter = e.classCounter { gnet_counter_add(counter, 1) }
        state.pointee.answeredInBatch &+= 1
        accessLog?.record(client: x.client, request: head, layout, status: e.status, bytes: layout.isHEAD ? 0 : e.bodyCount)
        if state.pointee.batch.count >= 64 * 1024 { flush(c) }
    }

    /// Files, 404s, and answers that close the connection.
    @inline(never)
    private func respondOtherwise(_ c: Conn, _ x: Exchange, _ index: Int, _ layout: HTTPHeadLayout, _ head: UnsafeRawBufferPointer) {
        if index >= 0 && table.entries[index].servesFiles, let files = routes[index].files {
            serveFile(c, x, files, route: index, prefixLength: routes[index].prefix.count, layout, head)
            return
        }
        let r = index >= 0 ? routes[index] : notFound
        state.pointee.batch.append(r.head)
        endHead(keepAlive: layout.keepAlive)
        if !layout.isHEAD { state.pointee.batch.append(r.body) }
        answered(status: r.status)
        accessLog?.record(client: x.client, request: head, layout, status: r.status, bytes: layout.isHEAD ? 0 : r.body.count)
        if state.pointee.batch.count >= 64 * 1024 { flush(c) }
        if !layout.keepAlive {
            flush(c)
            c.close()
        }
    }

    // MARK: files

    /// Answers a request on a file route: from the file cache when the file is small and was
    /// looked at within `file_cache_valid` (no system call), otherwise by opening it beneath the
    /// root, and then either from memory (caching it) or with sendfile.
    private func serveFile(_ c: Conn, _ x: Exchange, _ files: StaticFiles, route: Int, prefixLength: Int, _ layout: HTTPHeadLayout,
                           _ request: UnsafeRawBufferPointer) {
        func text(_ r: Range<Int>?) -> String? { r.map { String(decoding: request[$0], as: UTF8.self) } }
        guard let base = request.baseAddress else { return }  // a parsed request is never empty
        let target = HTTPService.originForm(request, layout.target)
        let pathEnd = request[target].firstIndex(of: 0x3F) ?? target.upperBound
        let relativeRange = min(target.lowerBound + prefixLength, pathEnd)..<pathEnd
        // The cache answers plain requests (no Range, no If-Modified-Since), keyed by the path
        // as the client spelled it.
        let cacheable = state.pointee.files.enabled && layout.range == nil && layout.ifModifiedSince == nil
        let key = (base + relativeRange.lowerBound).assumingMemoryBound(to: UInt8.self)
        let now = state.pointee.now
        var hash: UInt64 = 0
        if cacheable {
            hash = FileCache.hash(route: route, key, relativeRange.count)
            if let (entry, fresh) = state.pointee.files.find(route: route, key, relativeRange.count, hash: hash, now: now), fresh {
                respondFromCache(c, x, entry, layout, request)
                return
            }
        }
        let relative = Substring(String(decoding: request[relativeRange], as: UTF8.self))
        switch files.open(relative) {
        case .forbidden:
            plain(c, x, 403, "forbidden\n", layout, request)
        case .notFound:
            plain(c, x, 404, "not found\n", layout, request)
        case .file(let fd, let info, let type):
            let size = Int(info.st_size), modified = Int(info.st_mtim.tv_sec)
            let lastModified = StaticFiles.httpDate(modified)
            if cacheable, let entry = state.pointee.files.store(route: route, key, relativeRange.count, hash: hash, now: now, fd: fd, st: info,
                    head: Array("HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: \(type)\r\nContent-Length: \(size)\r\nLast-Modified: \(lastModified)\r\nAccept-Ranges: bytes\r\n".utf8)) {
                close(fd)
                respondFromCache(c, x, entry, layout, request)
                return
            }
            // A date in the future is no date (RFC 9110 §13.1.3): the file is sent.
            if let ims = text(layout.ifModifiedSince).flatMap(StaticFiles.parseHTTPDate), modified <= ims, ims <= time(nil) {
                close(fd)
                finishHead(c, x, 304, "HTTP/1.1 304 Not Modified\r\nServer: gnet\r\nLast-Modified: \(lastModified)\r\n", layout, request)
                return
            }
            var first = 0, length = size, status = 200, extra = ""
            switch StaticFiles.range(text(layout.range), size: size) {
            case .ignore: break
            case .range(let a, let b):
                first = a; length = b - a + 1; status = 206
                extra = "Content-Range: bytes \(a)-\(b)/\(size)\r\n"
            case .unsatisfiable:
                close(fd)
                finishHead(c, x, 416, "HTTP/1.1 416 Range Not Satisfiable\r\nServer: gnet\r\nContent-Range: bytes */\(size)\r\nContent-Length: 0\r\n", layout, request)
                return
            }
            let head = "HTTP/1.1 \(status) \(status == 206 ? "Partial Content" : "OK")\r\nServer: gnet\r\nContent-Type: \(type)\r\nContent-Length: \(length)\r\nLast-Modified: \(lastModified)\r\nAccept-Ranges: bytes\r\n" + extra
            let sendsFile = !layout.isHEAD && length > 0
            finishHead(c, x, status, head, layout, request, file: sendsFile ? (fd, first, length) : nil)
            if !sendsFile { close(fd) }
        }
    }

    /// Answers with a cached file: its head, the Date (and `Connection: close`), and its body,
    /// all copied into the batch that goes out with one write.
    private func respondFromCache(_ c: Conn, _ x: Exchange, _ entry: UnsafeMutablePointer<FileCache.Entry>, _ layout: HTTPHeadLayout,
                                  _ request: UnsafeRawBufferPointer) {
        let e = entry.pointee
        if let head = e.head { state.pointee.batch.append(head, count: e.headCount) }
        endHead(keepAlive: layout.keepAlive)
        if !layout.isHEAD, let body = e.body { state.pointee.batch.append(body, count: e.bodyCount) }
        answered(status: 200)
        accessLog?.record(client: x.client, request: request, layout, status: 200, bytes: layout.isHEAD ? 0 : e.bodyCount)
        if state.pointee.batch.count >= 64 * 1024 { flush(c) }
        if !layout.keepAlive {
            flush(c)
            c.close()
        }
    }

    /// A short text response on a file route (403/404), connection kept as the client asked.
    private func plain(_ c: Conn, _ x: Exchange, _ status: Int, _ text: String, _ layout: HTTPHeadLayout, _ request: UnsafeRawBufferPointer) {
        let head = "HTTP/1.1 \(status) \(HTTPService.reason(status))\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\n"
        finishHead(c, x, status, head, layout, request, body: layout.isHEAD ? "" : text)
    }

    /// Ends the head just added to the batch: Date, `Connection: close` unless kept alive, the
    /// blank line.
    private func endHead(keepAlive: Bool) {
        state.pointee.batch.append(date.header())
        if !keepAlive { state.pointee.batch.append(HTTPService.connectionClose) }
        state.pointee.batch.append("\r\n")
    }

    /// Ends a head (Date, Connection, blank line), adds a small body, then either sends the
    /// file or goes on to the next request.
    private func finishHead(_ c: Conn, _ x: Exchange, _ status: Int, _ head: String, _ layout: HTTPHeadLayout, _ request: UnsafeRawBufferPointer,
                            body: String = "", file: (Int32, Int, Int)? = nil) {
        answered(status: status)
        accessLog?.record(client: x.client, request: request, layout, status: status, bytes: file?.2 ?? body.utf8.count)
        state.pointee.batch.append(head)
        endHead(keepAlive: layout.keepAlive)
        state.pointee.batch.append(body)
        if let (fd, offset, length) = file {
            // The head and the file's first bytes go out in full segments, not a small one first.
            do { try c.setCork(true) } catch { /* not TCP: nothing to cork */ }
            flush(c)
            x.file = FileTransfer(fd: fd, offset: offset, remaining: length, size: offset + length,
                                  name: String(decoding: request[HTTPService.originForm(request, layout.target)].prefix { $0 != 0x3F }, as: UTF8.self))
            x.keepAliveAfterFile = layout.keepAlive
            sendFile(c, x)
            return
        }
        if !layout.keepAlive {
            flush(c)
            c.close()
        }
    }

    /// Sends up to 1 MiB of the current file per turn of the loop; asks to be told when the
    /// socket can take more.
    /// A file that ends before the length announced (it shrank while being sent) cannot be
    /// answered in full: the connection is closed, so the client sees the response cut short.
    private func sendFile(_ c: Conn, _ x: Exchange) {
        guard let f = x.file else { return }
        let n: Int
        do throws(GnetError) {
            n = try c.sendFile(f.fd, offset: f.offset, count: min(f.remaining, 1 << 20))
        } catch {
            if error == .endOfFile {
                options.logger.log(.warning, "http: \(f.name) ended at byte \(f.offset) of the \(f.size) announced (changed while being sent); connection closed")
            }
            abandon(c, x)
            return
        }
        if n == f.remaining {
            close(f.fd)
            x.file = nil
            afterFile(c, x)
            if c.inboundBuffered > 0 { c.wake() }  // pipelined requests waited for the file
            return
        }
        // The rest follows in a later turn of the loop (straight away if the socket can take
        // more), so that one fast client never holds the loop; a client that stops taking it
        // meets send_timeout.
        x.file?.offset += n
        x.file?.remaining -= n
        c.notifyWritable()
        watchSend(c, x)
    }

    /// Gives up on the connection: its response cannot be completed (or is not being read).
    private func abandon(_ c: Conn, _ x: Exchange) {
        if let f = x.file { close(f.fd) }
        x.file = nil
        c.discard()
        c.close()
    }

    public func onWritable(_ c: Conn) -> Action {
        guard let x = c.context as? Exchange else { return .none }
        if x.file != nil {
            sendFile(c, x)
        } else if case .answerOwed = x.phase, respondToPending(c, x) {
            // The output has room again: the answer held back goes first (the requests behind
            // it, if any, follow in the onTraffic the loop calls next).
            flush(c)
            betweenRequests(c, x, now: gnet_monotonic_ns())
        }
        return .none
    }

    public func onClose(_ c: Conn, error: GnetError?) -> Action {
        if let x = c.context as? Exchange, let f = x.file {
            close(f.fd)
            x.file = nil
        }
        return .none
    }

    /// After a file: the next request may come (or the connection closes, as asked).
    private func afterFile(_ c: Conn, _ x: Exchange) {
        do { try c.setCork(false) } catch { /* not TCP, or closing */ }
        if x.keepAliveAfterFile {
            x.idle = true
            x.deadline = gnet_monotonic_ns() + keepaliveTimeoutNanos
        } else {
            c.close()
        }
    }

    /// Answers `status` with a short text and closes the connection.
    private func fail(_ c: Conn, _ status: Int, _ reason: String) {
        flush(c)  // earlier pipelined responses first
        if let refused = state.pointee.metrics.refused { gnet_counter_add(refused, 1) }
        answered(status: status)
        if let log = accessLog, let x = c.context as? Exchange {
            if case .head = x.phase {
                log.record(client: x.client, request: UnsafeRawBufferPointer(start: nil, count: 0), nil, status: status, bytes: 0)
            } else {
                x.pendingHead.withUnsafeBytes { log.record(client: x.client, request: $0, x.pendingLayout, status: status, bytes: 0) }
            }
        }
        if let x = c.context as? Exchange { x.phase = .head }
        let body = "\(status) \(HTTPService.reason(status)): \(reason)\n"
        state.pointee.batch.append("HTTP/1.1 \(status) \(HTTPService.reason(status))\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n")
        state.pointee.batch.append(date.header())
        state.pointee.batch.append("\r\n" + body)
        flush(c)
        c.discard()
        c.close()
    }

    static let connectionClose = Array("Connection: close\r\n".utf8)

    /// A file on its way to a client.
    struct FileTransfer {
        let fd: Int32
        /// The next byte to send and how many are left.
        var offset: Int
        var remaining: Int
        /// Where the response ends in the file (for the log), and the request path.
        let size: Int
        let name: String
    }

    /// The reason phrase of `status` for a status line (`Status` for one not listed).
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"; case 201: "Created"; case 204: "No Content"; case 301: "Moved Permanently"; case 302: "Found"
        case 304: "Not Modified"; case 400: "Bad Request"; case 403: "Forbidden"; case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"; case 413: "Content Too Large"; case 414: "URI Too Long"
        case 431: "Request Header Fields Too Large"; case 500: "Internal Server Error"; case 501: "Not Implemented"
        case 503: "Service Unavailable"; case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
