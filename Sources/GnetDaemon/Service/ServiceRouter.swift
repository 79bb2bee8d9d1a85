import Gnet
import CGnetLinux

import GnetServices

/// A service handler with something to do when its worker begins to drain — after a reload, or
/// at stop: its listeners are closed, and its open connections have until `drain_timeout`.
/// Conform the `EventHandler` a `ServiceKind` makes to this to finish what is in flight and let
/// connections go at a boundary of its protocol (the http service answers each connection's
/// next request with `Connection: close` and closes connections idle for
/// `ServiceContext.drainIdleGrace`; push closes at a message boundary). A handler that does not
/// conform has each connection closed once it has been idle — nothing unconsumed or unsent, no
/// bytes from the client — for `drain_idle_grace`, or by the drain timeout.
public protocol DrainingService: AnyObject {
    /// Called once, on the loop thread, when draining begins.
    func beginDraining(_ loop: EventLoop)
}

extension HTTPService: DrainingService {}
extension PushService: DrainingService {}

/// Serves several services from one loop: each listener group (`Listener.group`) has its own
/// handler; connections that came from no listener (enrolled or dialled) go to `other`.
/// The router forwards every callback to the handler that owns the connection.
///
/// Draining: a handler that is a `DrainingService` drains its connections itself; for the
/// others (echo, framed) the router closes each connection once it has been idle — nothing
/// unconsumed, nothing waiting to go out, no bytes from the client — for `drainIdleGrace`:
/// at a frame boundary, and never over bytes the client has just sent.
final class ServiceRouter: EventHandler, DrainingService {
    private let handlers: [any EventHandler]
    private let other: (any EventHandler)?
    private let ticker: (any EventHandler)?
    private let drainIdleGrace: Duration
    /// While draining: when each connection of a handler that does not drain itself last had
    /// traffic (monotonic ns). Nil before draining, so serving pays nothing for it.
    private var lastTraffic: [ConnID: Int64]? = nil

    /// `handlers[g]` serves listener group g. `ticker` (optional) receives `onTick`.
    init(handlers: [any EventHandler], other: (any EventHandler)? = nil, ticker: (any EventHandler)? = nil,
         drainIdleGrace: Duration = .seconds(1)) {
        self.handlers = handlers
        self.other = other
        self.ticker = ticker
        self.drainIdleGrace = drainIdleGrace
    }

    @inline(__always)
    private func owner(_ c: Conn) -> (any EventHandler)? {
        let g = c.listenerGroup
        return g >= 0 && g < handlers.count ? handlers[g] : other
    }

    func onBoot(_ engine: Engine) -> Action {
        var result = Action.none
        for h in handlers + (other.map { [$0] } ?? []) where h.onBoot(engine) == .shutdown { result = .shutdown }
        return result
    }
    func onOpen(_ c: Conn) -> Action { owner(c)?.onOpen(c) ?? .none }
    func onTraffic(_ c: Conn) -> Action {
        if lastTraffic != nil, lastTraffic?[c.id] != nil { lastTraffic?[c.id] = gnet_monotonic_ns() }
        return owner(c)?.onTraffic(c) ?? .none
    }
    func onWritable(_ c: Conn) -> Action { owner(c)?.onWritable(c) ?? .none }
    func onClose(_ c: Conn, error: GnetError?) -> Action {
        if lastTraffic != nil { lastTraffic?[c.id] = nil }
        return owner(c)?.onClose(c, error: error) ?? .none
    }
    func onTick() -> (delay: Duration, action: Action) { ticker?.onTick() ?? (.seconds(3600), .none) }
    /// Tells every service that drains (`DrainingService`) that draining has begun.
    func beginDraining(_ loop: EventLoop) {
        for h in handlers { (h as? DrainingService)?.beginDraining(loop) }
        let now = gnet_monotonic_ns()
        var watched: [ConnID: Int64] = [:]
        loop.forEachConnection { c in
            let g = c.listenerGroup
            guard g >= 0 && g < handlers.count, !(handlers[g] is DrainingService), !c.isDatagram else { return }
            watched[c.id] = now
        }
        lastTraffic = watched
        for id in watched.keys { closeWhenIdle(id, loop) }
    }

    /// Closes connection `id` once it has been idle for `drainIdleGrace`, looking again then.
    private func closeWhenIdle(_ id: ConnID, _ loop: EventLoop) {
        loop.schedule(after: drainIdleGrace) { [weak self] in
            guard let self, let c = loop.conn(id), let last = self.lastTraffic?[id] else { return }
            let quietFor = gnet_monotonic_ns() - last
            if quietFor >= self.drainIdleGrace.nanoseconds && c.inboundBuffered == 0 && c.outboundBuffered == 0 {
                c.close()
            } else {
                self.closeWhenIdle(id, loop)
            }
        }
    }
    func onShutdown(_ engine: Engine) {
        for h in handlers { h.onShutdown(engine) }
        other?.onShutdown(engine)
    }
}
