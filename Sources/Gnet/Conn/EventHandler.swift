/// What the framework does after a callback returns.
public enum Action: Sendable, Equatable {
    /// Carry on.
    case none
    /// Close this connection once its outbound bytes are flushed (bounded by
    /// `Options.closeFlushTimeout`). From `onTick`/`onBoot`: nothing.
    case close
    /// Stop the engine: `onShutdown` fires, then every open connection gets `onClose`.
    case shutdown
}

/// The user's side of the framework. Every callback runs on the loop thread that owns the
/// connection, one at a time, so a handler needs no locks. A callback must not block: hand
/// blocking work to a `BlockingPool` and answer with `ConnHandle.asyncWrite`.
///
/// Inbound bytes rule: `onTraffic` fires once per read (and once per `wake`). Whatever the
/// handler does not consume with `next`/`read`/`discard` stays buffered, in order, and is seen
/// again at the next `onTraffic`. The framework never drops or repeats an inbound byte. A handler
/// that stops early with whole messages still buffered and no more bytes coming must call
/// `c.wake()` to be called again.
///
/// Backpressure rule: while a connection's outbound buffer is at `Options.writeBufferCap` the
/// loop stops reading it, so an `onTraffic` caused by a read always finds room for one more
/// write; a plain echo (`try c.write(c.next())`) never sees `.outboundBufferFull`. A handler
/// that writes more than it reads (several pipelined answers per read, say) checks
/// `c.outboundIsFull` before each answer and stops while it is true, leaving the rest of its
/// input unconsumed: once the output has drained to half the cap, the loop calls `onWritable`
/// and then `onTraffic` again with that input. Writes from `onTick` or other connections
/// continue from `onWritable`.
public protocol EventHandler: AnyObject {
    /// Once, before the loop starts serving. `.shutdown` makes `run` return at once.
    func onBoot(_ engine: Engine) -> Action
    /// A stream connection was accepted, dialled or enrolled. Write a greeting with `c.write`.
    /// Not fired for UDP.
    func onOpen(_ c: Conn) -> Action
    /// Bytes arrived (or `wake` was called). Pull them with `next`, `peek`, `read`, `discard`.
    func onTraffic(_ c: Conn) -> Action
    /// The outbound buffer drained to half its cap after having reached it.
    func onWritable(_ c: Conn) -> Action
    /// The connection is closing: fired exactly once per opened connection, before its
    /// descriptor is closed. `error` is nil when the handler or engine closed it, `.endOfStream`
    /// when the peer did, or the failure. For a dial that never connected it carries the connect error.
    func onClose(_ c: Conn, error: GnetError?) -> Action
    /// With `Options.ticker`: right after start, then after each returned delay.
    func onTick() -> (delay: Duration, action: Action)
    /// Once, when the engine stops, before the remaining connections are closed.
    func onShutdown(_ engine: Engine)
}

extension EventHandler {
    public func onBoot(_ engine: Engine) -> Action { .none }
    public func onOpen(_ c: Conn) -> Action { .none }
    public func onTraffic(_ c: Conn) -> Action { .none }
    public func onWritable(_ c: Conn) -> Action { .none }
    public func onClose(_ c: Conn, error: GnetError?) -> Action { .none }
    public func onTick() -> (delay: Duration, action: Action) { (.seconds(1), .none) }
    public func onShutdown(_ engine: Engine) {}
}
