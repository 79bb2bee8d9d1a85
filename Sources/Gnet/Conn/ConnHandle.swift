/// A connection reached from any thread. Every operation is posted to the owning loop and
/// carried out there, in the order posted; none of them blocks.
///
/// If the connection has closed by the time the loop gets to it, the operation is dropped and a
/// write's completion gets `.connectionClosed`; a descriptor reused by a newer connection is
/// never touched (ids carry a generation).
public struct ConnHandle: Sendable, Hashable {
    let loop: EventLoop
    /// The connection this handle names.
    public let id: ConnID
    let remote: SocketAddress?

    /// Writes `bytes` on the loop thread. `completion` (optional) runs on the loop thread once
    /// every byte has been handed to the kernel, or with the error: `.connectionClosed` (closed
    /// before or while sending), `.outboundBufferFull`, `.engineStopped`, `.queueFull`, or the
    /// write failure. A completion is called exactly once.
    public func asyncWrite(_ bytes: [UInt8], completion: (@Sendable (GnetError?) -> Void)? = nil) {
        do { try loop.tasks.post(.write(id, remote, bytes, completion)) } catch { completion?(error) }
    }

    /// Writes several arrays, in order, as one write (see `asyncWrite`).
    public func asyncWritev(_ parts: [[UInt8]], completion: (@Sendable (GnetError?) -> Void)? = nil) {
        do { try loop.tasks.post(.writev(id, remote, parts, completion)) } catch { completion?(error) }
    }

    /// Asks for an `onTraffic` callback on the loop thread.
    public func wake() { try? loop.tasks.post(.wake(id)) }

    /// Closes the connection gracefully (buffered bytes are flushed first).
    public func close() { try? loop.tasks.post(.close(id)) }

    public static func == (a: ConnHandle, b: ConnHandle) -> Bool { a.loop === b.loop && a.id == b.id }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(loop)); h.combine(id) }
}
