/// Why a frame could not be decoded or encoded. Decoding errors close the connection they
/// happened on (its `onClose` gets `.codec(error)`); nothing else is affected.
public enum CodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The frame (as announced by its header, or as far as it was scanned) exceeds the maximum.
    case frameTooLong(length: UInt64, maximum: Int)
    /// The length field minus the adjustment gives a frame shorter than its own header.
    case negativeLength(UInt64)
    /// More bytes to strip than the frame has.
    case stripExceedsFrame(strip: Int, frame: Int)
    /// An encoded length does not fit the length field.
    case lengthOutOfRange(length: Int, fieldBytes: Int)
    /// A fixed-length encoder was given a payload that is not a multiple of the frame length.
    case fixedLengthMismatch(length: Int, frameLength: Int)
    /// The peer closed in the middle of a frame.
    case truncatedFrame(buffered: Int)
    /// The codec's parameters are inconsistent.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .frameTooLong(let l, let m): return "frame of \(l) bytes exceeds the maximum of \(m)"
        case .negativeLength(let v): return "length field \(v) gives a negative frame length"
        case .stripExceedsFrame(let s, let f): return "cannot strip \(s) bytes from a frame of \(f)"
        case .lengthOutOfRange(let l, let b): return "length \(l) does not fit a \(b)-byte length field"
        case .fixedLengthMismatch(let l, let f): return "payload of \(l) bytes is not a multiple of the frame length \(f)"
        case .truncatedFrame(let n): return "stream ended inside a frame (\(n) bytes buffered)"
        case .invalidConfiguration(let w): return "invalid codec configuration: \(w)"
        }
    }
}

/// Where one decoded frame lies in the inbound bytes: the first `length` bytes are the whole
/// frame (consumed once it is handled), `payload` is the part handed to the handler.
public struct FrameBoundary: Equatable, Sendable {
    /// Bytes the frame occupies from the start of the inbound bytes.
    public let length: Int
    /// The payload's range within those bytes.
    public let payload: Range<Int>

    public init(length: Int, payload: Range<Int>) {
        self.length = length; self.payload = payload
    }
}

/// Up to 16 bytes kept inline (a frame header or trailer), so encoding allocates nothing.
public struct InlineBytes: Equatable, Sendable {
    var storage: (UInt64, UInt64) = (0, 0)
    /// Number of bytes held.
    public private(set) var count: Int = 0

    public init() {}

    public static func == (x: InlineBytes, y: InlineBytes) -> Bool { x.bytes == y.bytes }

    /// Appends one byte; at most 16 fit.
    public mutating func append(_ byte: UInt8) {
        precondition(count < 16, "InlineBytes holds at most 16 bytes")
        withUnsafeMutableBytes(of: &storage) { $0[count] = byte }
        count += 1
    }

    /// The bytes as a temporary raw buffer.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var s = storage
        let n = count
        return try Swift.withUnsafeBytes(of: &s) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// The bytes as an array (for tests and diagnostics).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// What an encoder puts around a payload: bytes before (a length field) and after (a delimiter).
public struct FrameAffixes: Equatable, Sendable {
    public var prefix = InlineBytes()
    public var suffix = InlineBytes()
    public init() {}
}

/// A frame codec: finds frame boundaries in inbound bytes and says what to put around an
/// outbound payload. Codecs are values with no per-connection state, so one instance serves
/// every connection of every loop.
///
/// Guarantees every built-in codec keeps: `decode` never allocates and never trusts an announced
/// length beyond `maxFrameLength`; bytes are never consumed by `decode` itself (the caller
/// consumes `FrameBoundary.length` once the frame is handled), so nothing is lost or repeated.
public protocol Codec: Sendable {
    /// The largest frame, header included, that `decode` accepts.
    var maxFrameLength: Int { get }
    /// The next frame's boundary, nil when more bytes are needed, or an error for bytes that can
    /// never form a valid frame.
    func decode(_ input: InboundView) throws(CodecError) -> FrameBoundary?
    /// The bytes to write before and after a payload of `payloadLength` bytes.
    func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes
}

/// Default maximum frame length of the built-in codecs: 16 MiB.
public let defaultMaxFrameLength = 16 << 20
