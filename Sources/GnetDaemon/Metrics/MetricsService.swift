import CGnetLinux
import Gnet
import GnetServices

/// The built-in `metrics` service: `GET /metrics` answers the whole daemon's figures in the
/// Prometheus text format, `GET /` a small page that reloads itself. Whichever worker takes
/// the connection reads the shared stats page and renders it (no round trip to the
/// supervisor). HTTP/1.1 with keep-alive and pipelining, answers in request order; only GET and
/// HEAD without a body; anything malformed gets 400 and a close. A request head must arrive
/// within `headTimeout` of its first byte (408 and a close), and a connection that asks
/// nothing for `idleTimeout` is closed: a trickling or silent client holds nothing for long.
final class MetricsService: EventHandler {
    /// When a connection's current head began, or when it last finished a request.
    final class Progress {
        var headStarted: Int64 = 0
        var lastAnswered: Int64
        init(now: Int64) { lastAnswered = now }
    }
    /// A connection that asks nothing for this long is closed.
    static let idleTimeout: Int64 = 60_000_000_000
    private let headTimeout: Int64
    private let page: StatsPage
    private let identity: DaemonIdentity
    private let kinds: [ServiceKind]
    private let refreshSeconds: Int
    private var previous = StatusPage.Totals()
    private let limits = HTTPLimits()

    init(page: StatsPage, identity: DaemonIdentity, kinds: [ServiceKind], refreshSeconds: Int, headTimeout: Duration = .seconds(10)) {
        self.page = page; self.identity = identity; self.kinds = kinds; self.refreshSeconds = refreshSeconds
        self.headTimeout = max(1, headTimeout.nanoseconds)
    }

    func onOpen(_ c: Conn) -> Action {
        c.context = Progress(now: gnet_monotonic_ns())
        watch(c.id, c.eventLoop, after: headTimeout)
        return .none
    }

    /// Closes the connection once its head is late or it has been idle too long; looks again
    /// at the next deadline otherwise.
    private func watch(_ id: ConnID, _ loop: EventLoop, after nanos: Int64) {
        loop.schedule(after: .nanoseconds(nanos)) { [weak self] in
            guard let self, let c = loop.conn(id), let p = c.context as? Progress else { return }
            let now = gnet_monotonic_ns()
            if p.headStarted > 0 {
                let late = p.headStarted + self.headTimeout - now
                if late <= 0 {
                    self.send(c, status: 408, type: "text/plain", body: "408 request head not received in time\n", isHEAD: false, keepAlive: false)
                    c.close()
                } else {
                    self.watch(id, loop, after: late)
                }
                return
            }
            let idle = p.lastAnswered + Self.idleTimeout - now
            if idle <= 0 { c.close() } else { self.watch(id, loop, after: min(idle, self.headTimeout)) }
        }
    }

    func onTraffic(_ c: Conn) -> Action {
        let progress = c.context as? Progress
        if let progress, progress.headStarted == 0, c.inboundBuffered > 0 { progress.headStarted = gnet_monotonic_ns() }
        defer {
            if let progress, c.inboundBuffered == 0 { progress.headStarted = 0 }
        }
        while c.isOpen && !c.outboundIsFull && c.inboundBuffered > 0 {
            var layout = HTTPHeadLayout()
            let head: UnsafeRawBufferPointer
            do { head = try c.peek() } catch { return .close }
            let outcome = HTTPHeadParser.scan(head, limits: limits, into: &layout)
            var answer: (status: Int, type: String, body: String)? = nil
            if case .complete(let length) = outcome { answer = respond(to: UnsafeRawBufferPointer(rebasing: head[0..<length]), layout) }
            switch outcome {
            case .incomplete:
                return .none
            case .failed(let e):
                send(c, status: e.status, type: "text/plain", body: "\(e.status) \(e.reason)\n", isHEAD: false, keepAlive: false)
                return .close
            case .complete(let length):
                c.discard(length)
                if let progress {
                    progress.lastAnswered = gnet_monotonic_ns()
                    progress.headStarted = c.inboundBuffered > 0 ? progress.lastAnswered : 0
                }
                guard let answer else { return .close }
                let keepAlive = layout.keepAlive && !layout.hasBody
                send(c, status: answer.status, type: answer.type, body: answer.body, isHEAD: layout.isHEAD, keepAlive: keepAlive)
                if !keepAlive { return .close }
            }
        }
        return .none
    }

    /// The answer to one request.
    private func respond(to head: UnsafeRawBufferPointer, _ layout: HTTPHeadLayout) -> (status: Int, type: String, body: String) {
        let method = head[layout.method]
        guard method.elementsEqual("GET".utf8) || method.elementsEqual("HEAD".utf8) else {
            return (405, "text/plain", "405 only GET and HEAD\n")
        }
        if layout.hasBody { return (400, "text/plain", "400 a GET has no body\n") }
        let target = head[layout.target]
        let path = target.prefix { $0 != UInt8(ascii: "?") }
        let snapshot = { MetricsSnapshot(page: self.page, identity: self.identity, kinds: self.kinds) }
        if path.elementsEqual("/metrics".utf8) {
            return (200, PrometheusExposition.contentType, PrometheusExposition.render(snapshot()))
        }
        if path.elementsEqual("/".utf8) {
            return (200, "text/html; charset=utf-8", StatusPage.render(snapshot(), refreshSeconds: refreshSeconds, previous: &previous))
        }
        return (404, "text/plain", "404 not found: try /metrics or /\n")
    }

    private func send(_ c: Conn, status: Int, type: String, body: String, isHEAD: Bool, keepAlive: Bool) {
        var response = "HTTP/1.1 \(status) \(HTTPService.reason(status))\r\nServer: \(identity.name)\r\nContent-Type: \(type)\r\n"
        response += "Content-Length: \(body.utf8.count)\r\nCache-Control: no-store\r\n"
        if !keepAlive { response += "Connection: close\r\n" }
        response += "\r\n"
        if !isHEAD { response += body }
        do {
            try c.write(response)
        } catch {
            // The connection is closing with that error; a full buffer ends it too.
            c.close()
        }
    }
}
