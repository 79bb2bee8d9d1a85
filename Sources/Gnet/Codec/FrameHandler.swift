/// The frame-level programming model (gnet v1's `React(frame) -> out`): a handler sees whole
/// frames, decoded by a `Codec`, one at a time and in order, and answers with frames.
///
/// Run it with `FrameAdapter(codec:handler:)` as the engine's handler.
///
/// The frame passed to `onFrame` is a `Span<UInt8>` that points straight into the
/// connection's inbound bytes (copied only when a frame straddles two buffers): it is valid
/// for that call and, being non-escapable, the compiler refuses to let it be stored. Copy it
/// (`Array(...)` over its indices) to keep it.
public protocol FrameHandler: AnyObject {
    /// Once, before the loop starts serving.
    func onBoot(_ engine: Engine) -> Action
    /// A connection opened (stream networks only).
    func onOpen(_ c: FramedConn) -> Action
    /// One whole frame's payload.
    func onFrame(_ frame: Span<UInt8>, _ c: FramedConn) -> Action
    /// The connection closed. A stream that ended inside a frame reports
    /// `.codec(.truncatedFrame)`; a decoding error reports `.codec(error)`.
    func onClose(_ c: FramedConn, error: GnetError?) -> Action
    /// The ticker (with `Options.ticker`).
    func onTick() -> (delay: Duration, action: Action)
    /// Once, when the engine stops.
    func onShutdown(_ engine: Engine)
}

extension FrameHandler {
    public func onBoot(_ engine: Engine) -> Action { .none }
    public func onOpen(_ c: FramedConn) -> Action { .none }
    public func onClose(_ c: FramedConn, error: GnetError?) -> Action { .none }
    public func onTick() -> (delay: Duration, action: Action) { (.seconds(1), .none) }
    public func onShutdown(_ engine: Engine) {}
}

/// A connection as a frame handler sees it: it writes frames (encoded with the adapter's
/// codec) and cannot consume inbound bytes behind the decoder's back.
public struct FramedConn {
    let conn: Conn
    let adapter: Unmanaged<FrameAdapter>

    /// The connection's identity.
    public var id: ConnID { conn.id }
    /// A thread-safe handle (raw async writes, wake, close).
    public var handle: ConnHandle { conn.handle }
    /// The handler's per-connection value.
    public var context: AnyObject? {
        get { conn.context }
        nonmutating set { conn.context = newValue }
    }
    /// The peer's address.
    public var remoteAddress: SocketAddress? { conn.remoteAddress }
    /// True until the connection has closed.
    public var isOpen: Bool { conn.isOpen }
    /// Bytes written and not yet taken by the kernel.
    public var outboundBuffered: Int { conn.outboundBuffered }
    /// The loop that owns the connection.
    public var eventLoop: EventLoop { conn.eventLoop }

    /// Encodes `payload` as one frame and writes it with one writev (header, payload, trailer),
    /// no intermediate copy. Throws `.codec(error)` for a payload the codec cannot encode
    /// (nothing is written then) and the errors of `Conn.write`.
    @discardableResult
    public func writeFrame(_ payload: UnsafeRawBufferPointer) throws(GnetError) -> Int {
        let affixes: FrameAffixes
        do throws(CodecError) {
            affixes = try adapter._withUnsafeGuaranteedRef { a in
                Result { () throws(CodecError) in try a.codec.affixes(payloadLength: payload.count) }
            }.get()
        } catch { throw .codec(error) }
        var prefix = affixes.prefix.storage, suffix = affixes.suffix.storage
        let pn = affixes.prefix.count, sn = affixes.suffix.count
        let conn = self.conn
        return try withUnsafeBytes(of: &prefix) { p in
            withUnsafeBytes(of: &suffix) { s in
                Result { () throws(GnetError) in
                    try conn.write(prefix: UnsafeRawBufferPointer(rebasing: p[0..<pn]), payload: payload,
                                   suffix: UnsafeRawBufferPointer(rebasing: s[0..<sn]))
                }
            }
        }.get()
    }

    /// Encodes and writes a frame whose payload is a span (e.g. the frame being answered).
    @discardableResult
    public func writeFrame(_ payload: Span<UInt8>) throws(GnetError) -> Int {
        try payload.withUnsafeBytes { b in Result { () throws(GnetError) in try writeFrame(b) } }.get()
    }

    /// Encodes and writes a frame from an array.
    @discardableResult
    public func writeFrame(_ payload: [UInt8]) throws(GnetError) -> Int {
        try payload.withUnsafeBytes { b in Result { () throws(GnetError) in try writeFrame(b) } }.get()
    }

    /// Closes once buffered output is flushed.
    public func close() { conn.close() }
}
