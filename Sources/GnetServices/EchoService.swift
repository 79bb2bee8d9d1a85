import Gnet

/// The `echo` service: every byte comes back to its sender, over TCP, UDP or Unix sockets.
///
/// `sync` (the default) writes straight from the inbound view inside `onTraffic`; that is the
/// fast path, and backpressure needs little code (the loop stops reading a connection whose
/// output is at its cap, and hands back the input left once it has drained). `async` copies the
/// bytes and hands them to `asyncWrite`, the way a handler that answers from another thread
/// would; it exists to exercise and measure that path. It keeps one write in flight per
/// connection and takes the next input once that write is in the kernel, so no echo is ever
/// refused for a full buffer, and none is dropped or reordered.
public final class EchoService: EventHandler {
    /// How replies are written.
    public enum WriteMode: String, Sendable { case sync, async }

    public let mode: WriteMode

    public init(mode: WriteMode = .sync) { self.mode = mode }

    public func onOpen(_ c: Conn) -> Action {
        if mode == .async { c.context = Flight() }
        return .none
    }

    public func onTraffic(_ c: Conn) -> Action {
        switch mode {
        case .sync:
            // Input left while the output is full stays buffered until it drains.
            guard !c.outboundIsFull, let bytes = try? c.next(), bytes.count > 0 else { return .none }
            do throws(GnetError) {
                try c.write(bytes)
            } catch {
                // Not full (checked above): the write failed, and the connection is closing.
            }
        case .async:
            guard let flight = c.context as? Flight else {  // a datagram: sent at once, never buffered
                let bytes = c.readBytes()
                if !bytes.isEmpty { c.handle.asyncWrite(bytes) }
                return .none
            }
            guard !flight.writing else { return .none }  // the rest waits for the write in flight
            let bytes = c.readBytes()
            guard !bytes.isEmpty else { return .none }
            flight.writing = true
            let handle = c.handle
            handle.asyncWrite(bytes) { error in
                // Runs on the loop once every byte is in the kernel (or the connection is gone).
                flight.writing = false
                if error == nil { handle.wake() }
            }
        }
        return .none
    }

    /// Whether an async echo is on its way (loop thread only: completions run on the loop).
    final class Flight: @unchecked Sendable {
        var writing = false
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
