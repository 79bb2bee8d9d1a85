import Gnet

import GnetServices

/// A service handler with something to do when its worker begins to drain — after a reload, or
/// at stop: its listeners are closed, and its open connections have until `drain_timeout`.
/// Conform the `EventHandler` a `ServiceKind` makes to this to finish what is in flight and let
/// idle connections go (the http service closes kept-alive connections waiting for a request
/// and answers the requests in flight with `Connection: close`); a handler that does not
/// conform keeps its connections until they end or the drain timeout closes them.
public protocol DrainingService: AnyObject {
    /// Called once, on the loop thread, when draining begins.
    func beginDraining(_ loop: EventLoop)
}

extension HTTPService: DrainingService {}

/// Serves several services from one loop: each listener group (`Listener.group`) has its own
/// handler; connections that came from no listener (enrolled or dialled) go to `other`.
/// The router forwards every callback to the handler that owns the connection.
final class ServiceRouter: EventHandler, DrainingService {
    private let handlers: [any EventHandler]
    private let other: (any EventHandler)?
    private let ticker: (any EventHandler)?

    /// `handlers[g]` serves listener group g. `ticker` (optional) receives `onTick`.
    init(handlers: [any EventHandler], other: (any EventHandler)? = nil, ticker: (any EventHandler)? = nil) {
        self.handlers = handlers
        self.other = other
        self.ticker = ticker
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
    func onTraffic(_ c: Conn) -> Action { owner(c)?.onTraffic(c) ?? .none }
    func onWritable(_ c: Conn) -> Action { owner(c)?.onWritable(c) ?? .none }
    func onClose(_ c: Conn, error: GnetError?) -> Action { owner(c)?.onClose(c, error: error) ?? .none }
    func onTick() -> (delay: Duration, action: Action) { ticker?.onTick() ?? (.seconds(3600), .none) }
    /// Tells every service that drains (`DrainingService`) that draining has begun.
    func beginDraining(_ loop: EventLoop) {
        for h in handlers { (h as? DrainingService)?.beginDraining(loop) }
    }
    func onShutdown(_ engine: Engine) {
        for h in handlers { h.onShutdown(engine) }
        other?.onShutdown(engine)
    }
}
