/// Runs a `FrameHandler` on the byte-level engine: decodes each connection's inbound bytes with
/// a `Codec` and delivers the frames one by one.
///
/// Delivery rules:
/// - Several frames in one read are all delivered, in order; a frame spanning many reads is
///   delivered once, whole. Bytes are consumed only after their frame's `onFrame` returns, so
///   nothing is lost or repeated, also across `wake`.
/// - `batchLimit` (0 = none) caps the frames delivered per `onTraffic`. When it is hit and more
///   whole frames are buffered, they stay buffered and the adapter wakes the connection: they
///   are delivered in the next loop iteration, after other connections had their turn. If the
///   peer closes meanwhile, the buffered frames are still delivered before `onClose`.
/// - Backpressure: while the connection's outbound buffer is at its cap, no frame is delivered;
///   the rest stay buffered and follow once the output has drained (the loop calls `onTraffic`
///   again then), so a handler that answers every frame never meets `.outboundBufferFull`.
/// - A decoding error closes that connection only; `onClose` gets `.codec(error)`.
/// - `onFrame` returning `.close` or `.shutdown` stops delivery for that call.
public final class FrameAdapter: EventHandler {
    /// The codec every connection of this adapter uses.
    public let codec: any Codec
    /// The user's frame handler.
    public let handler: any FrameHandler
    /// Most frames per `onTraffic`; 0 = all that are buffered.
    public let batchLimit: Int

    public init(codec: any Codec, handler: any FrameHandler, batchLimit: Int = 0) {
        self.codec = codec
        self.handler = handler
        self.batchLimit = max(0, batchLimit)
    }

    @inline(__always)
    private func framed(_ c: Conn) -> FramedConn { FramedConn(conn: c, adapter: Unmanaged.passUnretained(self)) }

    public func onBoot(_ engine: Engine) -> Action { handler.onBoot(engine) }
    public func onOpen(_ c: Conn) -> Action { handler.onOpen(framed(c)) }
    public func onTick() -> (delay: Duration, action: Action) { handler.onTick() }
    public func onShutdown(_ engine: Engine) { handler.onShutdown(engine) }

    public func onClose(_ c: Conn, error: GnetError?) -> Action {
        var reported = error
        if error == .endOfStream && c.inboundBuffered > 0 && !c.isDatagram {
            reported = .codec(.truncatedFrame(buffered: c.inboundBuffered))
        }
        return handler.onClose(framed(c), error: reported)
    }

    public func onTraffic(_ c: Conn) -> Action {
        var delivered = 0
        while c.inboundBuffered > 0 && !c.outboundIsFull {
            let boundary: FrameBoundary
            do throws(CodecError) {
                guard let b = try codec.decode(c.inboundView) else { break }
                boundary = b
            } catch {
                c.close(reason: .codec(error))
                return .none
            }
            if batchLimit > 0 && delivered == batchLimit {
                c.wake()
                break
            }
            guard let frame = try? c.peek(boundary.length) else { break }
            let payload = UnsafeRawBufferPointer(rebasing: frame[boundary.payload]).assumingMemoryBound(to: UInt8.self)
            let action = handler.onFrame(Span(_unsafeElements: payload), framed(c))
            c.discard(boundary.length)
            delivered += 1
            if action != .none { return action }
            if !c.isOpen { break }
        }
        if c.isDatagram { c.discard() }  // a datagram's bytes that form no frame are dropped with it
        return .none
    }
}
