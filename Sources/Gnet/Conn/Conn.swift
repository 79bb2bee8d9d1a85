#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// A connection as the handler sees it inside a callback: a small value (no reference
/// counting) naming a slot of the loop's connection table.
///
/// Use it only on the loop thread. Kept beyond the callback it stays memory-safe: once the
/// connection has closed every call throws `.connectionClosed` (or returns 0/nil), even if the
/// descriptor number was reused. To reach a connection from another thread, take `handle`.
///
/// Views returned by `next` and `peek` point into the loop's buffers: they are valid until the
/// callback returns or the next `next`/`peek`/`read` call, whichever comes first. Copy
/// (`Array(view)`) what must live longer.
public struct Conn {
    let record: UnsafeMutablePointer<ConnRecord>
    let generation: UInt32
    /// The owning loop, held without reference counting: it outlives every callback.
    let unmanagedLoop: Unmanaged<EventLoop>

    init(record: UnsafeMutablePointer<ConnRecord>, generation: UInt32, loop: EventLoop) {
        self.record = record; self.generation = generation; self.unmanagedLoop = Unmanaged.passUnretained(loop)
    }

    /// The loop for cold paths (a retain/release pair per use).
    var loop: EventLoop { unmanagedLoop.takeUnretainedValue() }

    @inline(__always) var live: Bool { record.pointee.generation == generation && record.pointee.phase != .free }

    /// Debug builds trap when a `Conn` is used off its loop's thread (take `handle` there);
    /// release builds compile the check away.
    @inline(__always) func assertOnLoop(_ what: StaticString) {
        assert(unmanagedLoop._withUnsafeGuaranteedRef { $0.mayTouchLoopState }, "Conn.\(what) called off the loop thread: use Conn.handle")
    }

    /// This connection's identity (stable for its life, never reused for another).
    public var id: ConnID { ConnID(fd: record.pointee.fd, generation: generation) }

    /// A thread-safe handle for async writes, wake and close from any thread.
    public var handle: ConnHandle { ConnHandle(loop: loop, id: id, remote: record.pointee.kind == .udpListener ? record.pointee.remote : nil) }

    /// The loop that owns this connection.
    public var eventLoop: EventLoop { loop }

    /// The group of the listener that accepted it (`Listener.group`); -1 when dialled or enrolled.
    public var listenerGroup: Int { live ? record.pointee.group : -1 }

    /// True until the connection has closed.
    public var isOpen: Bool { live && record.pointee.phase == .open && !record.pointee.closeRequested }

    /// True for UDP (a listener's peer, or a dialled UDP socket).
    public var isDatagram: Bool { live && !record.isStream }

    /// The socket descriptor, or -1 once closed. Do not close it yourself; use `close()`.
    public var fd: Int32 { live ? record.pointee.fd : -1 }

    /// A value of the handler's choosing, kept with the connection until it closes.
    public var context: AnyObject? {
        get { live ? record.pointee.context : nil }
        nonmutating set { if live { record.pointee.context = newValue } }
    }

    /// The local address (one `getsockname` per call).
    public var localAddress: SocketAddress? { live ? Sys.localAddress(record.pointee.fd) : nil }

    /// The peer: the sender of the current datagram for UDP, else the connected peer.
    public var remoteAddress: SocketAddress? {
        guard live else { return nil }
        if let r = record.pointee.remote { return r }
        return Sys.peerAddress(record.pointee.fd)
    }

    // MARK: reading

    /// Bytes received and not yet consumed.
    public var inboundBuffered: Int { live ? record.inboundBuffered : 0 }

    /// Calls `body` with every unconsumed byte, without copying, as at most two spans in order
    /// (the second is empty unless the bytes wrap around the connection's buffer), then
    /// consumes as many bytes as `body` returns (clamped to what is buffered; 0 keeps them all
    /// for the next callback). Returns the count consumed.
    ///
    /// The safe way to read: a span cannot outlive `body` (the compiler refuses to let it
    /// escape), so no view into the loop's buffers can be kept past the moment it stays valid.
    /// Cost: none when the bytes are in one piece; when older bytes wait in the connection's
    /// buffer and new ones arrived, the new ones are appended to it first (the copy the loop
    /// makes anyway when a callback leaves bytes unconsumed).
    @discardableResult
    public func withInbound<E: Error>(_ body: (Span<UInt8>, Span<UInt8>) throws(E) -> Int) throws(E) -> Int {
        assertOnLoop("withInbound")
        guard live else { return 0 }
        let r = record
        if r.pointee.inbound.count > 0 && r.pointee.pendingCount > 0, let p = r.pointee.pendingStart {
            r.pointee.inbound.append(UnsafeRawBufferPointer(start: p, count: r.pointee.pendingCount), pool: loop.pool)
            r.pointee.pendingCount = 0
            r.pointee.pendingStart = nil
        }
        let a: UnsafeRawBufferPointer, b: UnsafeRawBufferPointer
        if r.pointee.inbound.count > 0 {
            (a, b) = r.pointee.inbound.segments()
        } else {
            a = UnsafeRawBufferPointer(start: r.pointee.pendingStart, count: r.pointee.pendingCount)
            b = UnsafeRawBufferPointer(start: nil, count: 0)
        }
        let wanted = try body(Span(_unsafeElements: a.assumingMemoryBound(to: UInt8.self)),
                              Span(_unsafeElements: b.assumingMemoryBound(to: UInt8.self)))
        guard live else { return 0 }
        let k = min(max(wanted, 0), record.inboundBuffered)
        consume(k)
        return k
    }

    /// Calls `body` with the next `n` bytes as one contiguous span, without consuming them.
    /// No copy when they lie in one piece; when they straddle the end of the connection's
    /// buffer they are copied once into the loop's scratch memory. Throws `.shortBuffer` when
    /// fewer than `n` are buffered.
    public func withPeek<R>(_ n: Int, _ body: (Span<UInt8>) -> R) throws(GnetError) -> R {
        let view = try peek(n)
        return body(Span(_unsafeElements: view.assumingMemoryBound(to: UInt8.self)))
    }

    /// Consumes and returns the next `n` bytes (all of them for nil or a negative `n`).
    /// Throws `.shortBuffer` when fewer than `n` are buffered (nothing is consumed then).
    ///
    /// Unsafe: the pointer is valid only until the callback returns or the next read call, and
    /// nothing stops code from keeping it longer. For hot paths that need a raw pointer;
    /// otherwise use `withInbound` or `withPeek`.
    public func next(_ n: Int? = nil) throws(GnetError) -> UnsafeRawBufferPointer {
        assertOnLoop("next")
        let r = record
        if r.pointee.inbound.count == 0 && r.pointee.generation == generation && r.pointee.phase != .free {
            // Fast path: everything unconsumed is still in the loop's read buffer.
            let available = r.pointee.pendingCount
            let want = (n ?? -1) < 0 ? available : n!
            if want > available { throw .shortBuffer }
            let start = r.pointee.pendingStart
            r.pointee.pendingCount = available &- want
            if want > 0 { r.pointee.pendingStart = start.unsafelyUnwrapped + want }
            return UnsafeRawBufferPointer(start: want > 0 ? start : nil, count: want)
        }
        let view = try peek(n)
        consume(view.count)
        return view
    }

    /// Returns the next `n` bytes (all for nil or negative) without consuming them.
    /// Throws `.shortBuffer` when fewer than `n` are buffered. Contiguous: bytes that straddle
    /// the end of the connection's buffer are copied into the loop's scratch memory, so peeking
    /// everything of a large, wrapped input costs a copy of all of it per call (`withInbound`
    /// never copies).
    ///
    /// Unsafe, as `next`: valid until the callback returns or the next read call.
    public func peek(_ n: Int? = nil) throws(GnetError) -> UnsafeRawBufferPointer {
        assertOnLoop("peek")
        guard live else { throw .connectionClosed }
        let r = record
        let total = r.inboundBuffered
        let want = (n ?? -1) < 0 ? total : n!
        if want > total { throw .shortBuffer }
        if want == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let ringCount = r.pointee.inbound.count
        if ringCount == 0 {
            return UnsafeRawBufferPointer(start: r.pointee.pendingStart, count: want)
        }
        let (first, _) = r.pointee.inbound.segments()
        if first.count >= want { return UnsafeRawBufferPointer(rebasing: first[0..<want]) }
        if want > loop.scratchCapacity { loop.growScratch(want) }
        let fromRing = min(want, ringCount)
        r.pointee.inbound.copy(fromRing, to: loop.scratch)
        if want > fromRing, let p = r.pointee.pendingStart {
            (loop.scratch + fromRing).copyMemory(from: p, byteCount: want - fromRing)
        }
        return UnsafeRawBufferPointer(start: loop.scratch, count: want)
    }

    /// Drops the next `n` bytes (all for nil or negative); returns how many were dropped.
    @discardableResult
    public func discard(_ n: Int? = nil) -> Int {
        assertOnLoop("discard")
        guard live else { return 0 }
        let total = record.inboundBuffered
        let k = (n ?? -1) < 0 ? total : min(n!, total)
        consume(k)
        return k
    }

    /// Copies up to `buffer.count` bytes into `buffer` and consumes them. An empty buffer reads
    /// 0; with nothing buffered it throws `.shortBuffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(GnetError) -> Int {
        guard live else { throw .connectionClosed }
        if buffer.isEmpty { return 0 }
        let total = record.inboundBuffered
        if total == 0 { throw .shortBuffer }
        let k = min(buffer.count, total)
        let view = try peek(k)
        buffer.baseAddress!.copyMemory(from: view.baseAddress!, byteCount: k)
        consume(k)
        return k
    }

    /// Consumes up to `n` bytes (all for nil) into a new array.
    public func readBytes(_ n: Int? = nil) -> [UInt8] {
        guard live else { return [] }
        let k = min(n ?? Int.max, record.inboundBuffered)
        guard let view = try? next(k) else { return [] }
        return Array(view)
    }

    @inline(__always)
    private func consume(_ k: Int) {
        let r = record
        let fromRing = min(k, r.pointee.inbound.count)
        if fromRing > 0 { r.pointee.inbound.consume(fromRing) }
        let rest = k - fromRing
        if rest > 0 {
            r.pointee.pendingStart = r.pointee.pendingStart.map { $0 + rest }
            r.pointee.pendingCount -= rest
        }
    }

    /// The unconsumed inbound bytes, in up to three pieces, without copying (for decoders).
    var inboundView: InboundView {
        let r = record
        let (a, b) = r.pointee.inbound.segments()
        return InboundView(a, b, UnsafeRawBufferPointer(start: r.pointee.pendingStart, count: r.pointee.pendingCount))
    }

    /// Closes at once with `reason` (no flush of buffered output: the connection is in error).
    func close(reason: GnetError) {
        guard live else { return }
        loop.requestClose(record, reason: reason)
    }

    /// Writes `prefix`, `payload`, `suffix` as one piece of output with one writev.
    func write(prefix: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, suffix: UnsafeRawBufferPointer) throws(GnetError) -> Int {
        guard live else { throw .connectionClosed }
        return try loop.write(record, prefix, payload, suffix)
    }

    // MARK: writing

    /// Bytes accepted by `write` that the kernel has not taken yet.
    public var outboundBuffered: Int { live ? record.pointee.outbound.count : 0 }

    /// True while the outbound buffer is at its cap, so that a `write` now would throw
    /// `.outboundBufferFull`. A handler that answers several requests from one `onTraffic`
    /// checks it before each answer and, when it is true, stops and leaves the rest of its input
    /// unconsumed: the loop has stopped reading the connection, and once the output has drained
    /// to half the cap it calls `onWritable` and then `onTraffic` again with that input. Nothing
    /// is lost or reordered, and what one connection buffers stays bounded.
    public var outboundIsFull: Bool { !live || record.pointee.outbound.count >= record.pointee.writeCap }

    /// Bytes of this connection the kernel has taken so far (direct writes, flushes of the
    /// outbound buffer, `sendFile`): a measure of the peer's progress in reading.
    public var bytesSent: UInt64 { live ? record.pointee.sentTotal : 0 }

    /// Writes `bytes`: straight to the socket when nothing is buffered, the rest buffered and
    /// sent when the socket is writable. All or nothing: returns `bytes.count`, or throws
    /// `.outboundBufferFull` (the buffer is at its cap; wait for `onWritable`),
    /// `.connectionClosed`, or the write error (which also closes the connection).
    /// On a UDP connection one call is one datagram, to the current peer.
    @discardableResult @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) throws(GnetError) -> Int {
        assertOnLoop("write")
        guard live else { throw .connectionClosed }
        let r = record
        return try unmanagedLoop._withUnsafeGuaranteedRef { loop in Result { () throws(GnetError) in try loop.write(r, bytes) } }.get()
    }

    /// Writes a span's bytes (see `write(_: UnsafeRawBufferPointer)`): e.g. bytes handed to
    /// `withInbound`, echoed without a copy.
    @discardableResult
    public func write(_ bytes: Span<UInt8>) throws(GnetError) -> Int {
        try bytes.withUnsafeBytes { b in Result { () throws(GnetError) in try write(b) } }.get()
    }

    /// Writes two spans as one piece of output, in order, with one `writev` (all or nothing,
    /// as `write(_: UnsafeRawBufferPointer)`): the two spans `withInbound` hands out, echoed
    /// without a copy.
    @discardableResult
    public func write(_ first: Span<UInt8>, _ second: Span<UInt8>) throws(GnetError) -> Int {
        assertOnLoop("write")
        guard live else { throw .connectionClosed }
        return try first.withUnsafeBytes { a in
            second.withUnsafeBytes { b in
                Result { () throws(GnetError) in try loop.write(record, a, b, UnsafeRawBufferPointer(start: nil, count: 0)) }
            }
        }.get()
    }

    /// Writes a raw span's bytes (see `write(_: UnsafeRawBufferPointer)`).
    @discardableResult
    public func write(_ bytes: RawSpan) throws(GnetError) -> Int {
        try bytes.withUnsafeBytes { b in Result { () throws(GnetError) in try write(b) } }.get()
    }

    /// Writes an array's bytes (see `write(_: UnsafeRawBufferPointer)`).
    @discardableResult
    public func write(_ bytes: [UInt8]) throws(GnetError) -> Int {
        try bytes.withUnsafeBytes { b in Result { () throws(GnetError) in try write(b) } }.get()
    }

    /// Writes a string's UTF-8 bytes (see `write(_: UnsafeRawBufferPointer)`).
    @discardableResult
    public func write(_ text: String) throws(GnetError) -> Int {
        var text = text
        return try text.withUTF8 { b in Result { () throws(GnetError) in try write(UnsafeRawBufferPointer(b)) } }.get()
    }

    /// Writes several pieces in order with one `writev` (up to 1024 pieces per call).
    @discardableResult
    public func writev(_ parts: [UnsafeRawBufferPointer]) throws(GnetError) -> Int {
        assertOnLoop("writev")
        guard live else { throw .connectionClosed }
        return try loop.write(record, parts)
    }

    /// Writes several arrays in order with one `writev`.
    @discardableResult
    public func writev(_ parts: [[UInt8]]) throws(GnetError) -> Int {
        guard live else { throw .connectionClosed }
        let loop = self.loop, record = self.record
        return try withRawBuffers(parts) { views in Result { () throws(GnetError) in try loop.write(record, views) } }.get()
    }

    /// Sends one datagram to `address` on a UDP connection. Throws `.invalidAddress` without an
    /// address and `.unsupportedOperation` on a stream.
    @discardableResult
    public func sendTo(_ bytes: UnsafeRawBufferPointer, address: SocketAddress?) throws(GnetError) -> Int {
        guard live else { throw .connectionClosed }
        guard !record.isStream else { throw .unsupportedOperation("sendTo on a stream connection") }
        guard let address else { throw .invalidAddress("no address to send to") }
        let saved = record.pointee.remote
        record.pointee.remote = address
        defer { record.pointee.remote = saved }
        if record.pointee.kind == .udpConnected { throw .unsupportedOperation("sendTo on a connected UDP socket") }
        return try loop.write(record, bytes)
    }

    /// Sends up to `count` bytes of the open file `file`, starting at `offset`, with sendfile(2)
    /// (no copy through user space). Only when no other output is buffered ahead of it; returns
    /// the bytes sent, possibly fewer than asked or 0 — then call `notifyWritable()` and go on
    /// from `onWritable`. Throws `.endOfFile` when the file has no byte at `offset` (it shrank
    /// while being sent): the response cannot be completed. The caller keeps ownership of `file`.
    @discardableResult
    public func sendFile(_ file: Int32, offset: Int, count: Int) throws(GnetError) -> Int {
        assertOnLoop("sendFile")
        guard live else { throw .connectionClosed }
        return try loop.sendFile(record, file, offset: offset, count: count)
    }

    /// Asks for one `onWritable` once buffered output is gone and the socket can take more
    /// bytes (for output produced piecewise, e.g. a file sent with `sendFile`).
    public func notifyWritable() {
        assertOnLoop("notifyWritable")
        guard live, record.pointee.phase == .open else { return }
        record.pointee.wantWritable = true
        loop.updateInterest(record)
    }

    /// Tries to hand buffered outbound bytes to the kernel now.
    public func flush() throws(GnetError) {
        assertOnLoop("flush")
        guard live, record.isOpen else { throw .connectionClosed }
        if !record.pointee.outbound.isEmpty { loop.flush(record) }
    }

    // MARK: control

    /// Asks for another `onTraffic` in the next loop iteration, even if no bytes arrive.
    public func wake() {
        assertOnLoop("wake")
        guard live, record.pointee.phase == .open else { return }
        loop.schedule(record, read: false)
    }

    /// Closes the connection once its buffered outbound bytes are flushed. Idempotent.
    /// Inside a callback the close happens when the callback returns.
    public func close() {
        assertOnLoop("close")
        guard live, record.isStream || record.pointee.kind == .udpConnected else { return }
        loop.requestClose(record, reason: nil)
    }

    /// `TCP_NODELAY` on or off.
    public func setNoDelay(_ on: Bool) throws(GnetError) {
        try tcpOnly()
        do throws(SystemError) { try Sys.setOption(record.pointee.fd, Int32(IPPROTO_TCP), TCP_NODELAY, on ? 1 : 0) } catch { throw .system(error) }
    }

    /// `TCP_CORK` on or off. While on, the kernel sends only full segments, so a response head
    /// and the file sent after it travel together; turning it off sends what is held.
    public func setCork(_ on: Bool) throws(GnetError) {
        try tcpOnly()
        do throws(SystemError) { try Sys.setOption(record.pointee.fd, Int32(IPPROTO_TCP), TCP_CORK, on ? 1 : 0) } catch { throw .system(error) }
    }

    /// TCP keep-alive probes; every value must be positive (whole seconds).
    public func setKeepAlive(idle: Duration, interval: Duration, count: Int) throws(GnetError) {
        try tcpOnly()
        try loop.setKeepAlive(record.pointee.fd, KeepAlive(idle: idle, interval: interval, count: count))
    }

    /// `SO_RCVBUF`.
    public func setReadBuffer(_ bytes: Int) throws(GnetError) {
        guard live else { throw .connectionClosed }
        do throws(SystemError) { try Sys.setOption(record.pointee.fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: bytes)) } catch { throw .system(error) }
    }

    /// `SO_SNDBUF`.
    public func setWriteBuffer(_ bytes: Int) throws(GnetError) {
        guard live else { throw .connectionClosed }
        do throws(SystemError) { try Sys.setOption(record.pointee.fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: bytes)) } catch { throw .system(error) }
    }

    /// `SO_LINGER`: nil turns lingering off; 0 makes close send a reset.
    public func setLinger(_ seconds: Int?) throws(GnetError) {
        guard live else { throw .connectionClosed }
        if gnet_set_linger(record.pointee.fd, seconds == nil ? 0 : 1, Int32(clamping: seconds ?? 0)) < 0 {
            throw .system(Sys.fail("setsockopt(SO_LINGER)"))
        }
    }

    /// A duplicate descriptor of the socket (close-on-exec), owned by the caller.
    public func dup() throws(GnetError) -> Int32 {
        guard live else { throw .connectionClosed }
        do throws(SystemError) { return try Sys.dup(record.pointee.fd) } catch { throw .system(error) }
    }

    private func tcpOnly() throws(GnetError) {
        guard live else { throw .connectionClosed }
        guard record.pointee.kind == .tcp else { throw .unsupportedOperation("TCP option on a non-TCP connection") }
    }
}
