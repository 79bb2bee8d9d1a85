/// Everything that can go wrong in Gnet, as one value type. Thrown with typed throws on the
/// hot path, so an error costs no allocation beyond an associated string.
public enum GnetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case system(SystemError)
    /// The address names a network Gnet does not speak (e.g. `tulip://howdy`).
    case unsupportedProtocol(String)
    /// The address is malformed (no scheme, no host/port, trailing path, empty unix path…).
    case invalidAddress(String)
    /// A read asked for bytes that are not buffered (gnet's `io.ErrShortBuffer`).
    case shortBuffer
    /// The connection is closed (or was closed and its slot reused).
    case connectionClosed
    /// Writing would take the outbound buffer past its cap; nothing of that write was taken.
    case outboundBufferFull
    /// The operation does not apply to this kind of connection (e.g. keep-alive on UDP).
    case unsupportedOperation(String)
    /// An argument is out of range (e.g. a zero keep-alive interval).
    case invalidArgument(String)
    /// The peer closed its side: the normal end of a stream.
    case endOfStream
    /// The connection was silent for longer than the idle timeout.
    case idleTimeout
    /// The engine is stopping or stopped; the request was not carried out.
    case engineStopped
    /// A queue (async tasks, blocking pool) is at its bound; the request was not taken.
    case queueFull
    /// A connect did not complete in time.
    case connectTimeout
    /// Outbound bytes could not be delivered before the close deadline.
    case flushTimeout
    /// A frame codec refused the bytes (or a payload to encode).
    case codec(CodecError)
    /// `sendFile` found the file ending before the bytes it was asked to send (it was
    /// truncated while being sent, or the count was wrong); nothing was sent.
    case endOfFile
    /// The connection's buffered input reached its limit (`Options.maxInboundBuffered`) and
    /// the handler consumed nothing of it in that callback: the connection was closed.
    case inboundBufferFull

    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .unsupportedProtocol(let a): return "unsupported protocol in address \"\(a)\""
        case .invalidAddress(let a): return "invalid address \"\(a)\""
        case .shortBuffer: return "short buffer: not enough inbound bytes"
        case .connectionClosed: return "connection closed"
        case .outboundBufferFull: return "outbound buffer full"
        case .unsupportedOperation(let w): return "unsupported operation: \(w)"
        case .invalidArgument(let w): return "invalid argument: \(w)"
        case .endOfStream: return "end of stream"
        case .idleTimeout: return "idle timeout"
        case .engineStopped: return "engine stopped"
        case .queueFull: return "queue full"
        case .connectTimeout: return "connect timed out"
        case .flushTimeout: return "outbound bytes not delivered before the close deadline"
        case .codec(let e): return "codec: \(e)"
        case .endOfFile: return "the file ended before the bytes asked for"
        case .inboundBufferFull: return "inbound buffer full: the handler consumed nothing at the input limit"
        }
    }
}
