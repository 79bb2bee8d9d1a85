/// Frames carrying their length in a header field (netty's LengthFieldBasedFrameDecoder and
/// LengthFieldPrepender).
///
/// Decoding: skip `lengthFieldOffset` header bytes, read the `lengthFieldLength`-byte field,
/// the whole frame is `offset + fieldLength + value + lengthAdjustment` bytes (minus
/// `fieldLength` when `lengthIncludesLengthField`, so the flag means the same both ways), and
/// the payload is that frame minus its first `initialBytesToStrip` bytes. A frame longer than
/// `maxFrameLength` is an error as soon as its header is read: the decoder never waits for,
/// let alone allocates, an announced size it will refuse.
///
/// Encoding: prepend a field holding `payload + lengthAdjustment` (+ the field's own size when
/// `lengthIncludesLengthField`), checked against what the field can hold. With offset 0 and
/// `initialBytesToStrip == lengthFieldLength` and no adjustment, an encoded frame decodes back to
/// its payload, with or without `lengthIncludesLengthField`. (`lengthAdjustment` keeps netty's two
/// meanings: added to the field when decoding, to the payload length when encoding.)
public struct LengthFieldCodec: Codec {
    public let lengthFieldOffset: Int
    public let lengthFieldLength: Int
    public let lengthAdjustment: Int
    public let initialBytesToStrip: Int
    public let bigEndian: Bool
    public let lengthIncludesLengthField: Bool
    public let maxFrameLength: Int

    /// The largest `lengthFieldOffset`, `initialBytesToStrip` and magnitude of
    /// `lengthAdjustment` a codec accepts: far beyond any real protocol's header, and small
    /// enough that no frame-length arithmetic can overflow.
    public static let maxParameter = Int(Int32.max)

    /// Field sizes 1, 2, 3, 4 or 8 bytes; offset and strip from 0, the adjustment within
    /// ±`maxParameter`, the maximum frame length positive. Anything else is
    /// `.invalidConfiguration`, never a trap later.
    public init(lengthFieldOffset: Int = 0, lengthFieldLength: Int = 4, lengthAdjustment: Int = 0,
                initialBytesToStrip: Int? = nil, bigEndian: Bool = true, lengthIncludesLengthField: Bool = false,
                maxFrameLength: Int = defaultMaxFrameLength) throws(CodecError) {
        guard [1, 2, 3, 4, 8].contains(lengthFieldLength) else {
            throw .invalidConfiguration("length field must be 1, 2, 3, 4 or 8 bytes, not \(lengthFieldLength)")
        }
        let limit = Self.maxParameter
        guard (0...limit).contains(lengthFieldOffset) else { throw .invalidConfiguration("length field offset must be 0 to \(limit), not \(lengthFieldOffset)") }
        guard (-limit...limit).contains(lengthAdjustment) else {
            throw .invalidConfiguration("length adjustment must be -\(limit) to \(limit), not \(lengthAdjustment)")
        }
        let strip = initialBytesToStrip ?? (lengthFieldOffset + lengthFieldLength)
        guard (0...limit).contains(strip) else { throw .invalidConfiguration("bytes to strip must be 0 to \(limit), not \(strip)") }
        guard maxFrameLength > 0 else { throw .invalidConfiguration("maximum frame length must be positive") }
        guard strip <= maxFrameLength else {
            throw .invalidConfiguration("bytes to strip (\(strip)) exceed the maximum frame length \(maxFrameLength): every frame would be refused")
        }
        guard maxFrameLength >= lengthFieldOffset + lengthFieldLength else {
            throw .invalidConfiguration("maximum frame length \(maxFrameLength) is shorter than the header")
        }
        self.lengthFieldOffset = lengthFieldOffset
        self.lengthFieldLength = lengthFieldLength
        self.lengthAdjustment = lengthAdjustment
        self.initialBytesToStrip = strip
        self.bigEndian = bigEndian
        self.lengthIncludesLengthField = lengthIncludesLengthField
        self.maxFrameLength = maxFrameLength
    }

    public func decode(_ input: InboundView) throws(CodecError) -> FrameBoundary? {
        let headerEnd = lengthFieldOffset + lengthFieldLength
        let available = input.count
        guard available >= headerEnd else { return nil }
        let value = input.unsignedInteger(at: lengthFieldOffset, size: lengthFieldLength, bigEndian: bigEndian)
        // The field can hold up to 2^64-1; once it is at most Int.max / 2, adding the adjustment
        // and the header (each bounded by `maxParameter` at init) cannot overflow.
        guard value <= UInt64(Int.max / 2) else { throw .frameTooLong(length: value, maximum: maxFrameLength) }
        let frame = Int(value) + lengthAdjustment + headerEnd - (lengthIncludesLengthField ? lengthFieldLength : 0)
        guard frame >= headerEnd else { throw .negativeLength(value) }
        guard frame <= maxFrameLength else { throw .frameTooLong(length: UInt64(frame), maximum: maxFrameLength) }
        guard initialBytesToStrip <= frame else { throw .stripExceedsFrame(strip: initialBytesToStrip, frame: frame) }
        guard available >= frame else { return nil }
        return FrameBoundary(length: frame, payload: initialBytesToStrip..<frame)
    }

    public func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes {
        let (adjusted, overflow) = payloadLength.addingReportingOverflow(lengthAdjustment + (lengthIncludesLengthField ? lengthFieldLength : 0))
        guard !overflow, adjusted >= 0 else { throw .lengthOutOfRange(length: overflow ? Int.max : adjusted, fieldBytes: lengthFieldLength) }
        let length = adjusted
        if lengthFieldLength < 8 {
            guard UInt64(length) < (UInt64(1) << (8 * lengthFieldLength)) else {
                throw .lengthOutOfRange(length: length, fieldBytes: lengthFieldLength)
            }
        }
        var f = FrameAffixes()
        let v = UInt64(length)
        if bigEndian {
            for i in stride(from: lengthFieldLength - 1, through: 0, by: -1) { f.prefix.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
        } else {
            for i in 0..<lengthFieldLength { f.prefix.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
        }
        return f
    }
}
