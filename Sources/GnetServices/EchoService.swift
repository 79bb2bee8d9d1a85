import Gnet

/// The `echo` service: every byte comes back to its sender, over TCP, UDP or Unix sockets.
///
/// `sync` (the default) writes straight from the inbound view inside `onTraffic`; that is the
/// fast path, and backpressure needs no code (the loop stops reading a connection whose output is
/// at its cap). `async` copies the bytes and hands them to `asyncWrite`, the way a handler that
/// answers from another thread would; it exists to exercise and measure that path.
public final class EchoService: EventHandler {
    /// How replies are written.
    public enum WriteMode: String, Sendable { case sync, async }

    public let mode: WriteMode

    public init(mode: WriteMode = .sync) { self.mode = mode }

    public func onTraffic(_ c: Conn) -> Action {
        switch mode {
        case .sync:
            if let bytes = try? c.next() { _ = try? c.write(bytes) }
        case .async:
            let bytes = c.readBytes()
            if !bytes.isEmpty { c.handle.asyncWrite(bytes) }
        }
        return .none
    }
}

/// The `framed` service: each decoded frame comes back re-encoded with the same codec (a
/// length-field frame returns with its length field).
public final class FramedEchoService: FrameHandler {
    public init() {}

    public func onFrame(_ frame: Span<UInt8>, _ c: FramedConn) -> Action {
        do { try c.writeFrame(frame) } catch { return .close }
        return .none
    }
}
