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

    /// Field sizes 1, 2, 3, 4 or 8 bytes; offset and strip must not be negative.
    public init(lengthFieldOffset: Int = 0, lengthFieldLength: Int = 4, lengthAdjustment: Int = 0,
                initialBytesToStrip: Int? = nil, bigEndian: Bool = true, lengthIncludesLengthField: Bool = false,
                maxFrameLength: Int = defaultMaxFrameLength) throws(CodecError) {
        guard [1, 2, 3, 4, 8].contains(lengthFieldLength) else {
            throw .invalidConfiguration("length field must be 1, 2, 3, 4 or 8 bytes, not \(lengthFieldLength)")
        }
        guard lengthFieldOffset >= 0 else { throw .invalidConfiguration("length field offset must not be negative") }
        let strip = initialBytesToStrip ?? (lengthFieldOffset + lengthFieldLength)
        guard strip >= 0 else { throw .invalidConfiguration("bytes to strip must not be negative") }
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
        // Frame length in 128-bit-safe steps: value can be up to 2^64-1.
        guard value <= UInt64(Int.max / 2) else { throw .frameTooLong(length: value, maximum: maxFrameLength) }
        let frame = Int(value) + lengthAdjustment + headerEnd - (lengthIncludesLengthField ? lengthFieldLength : 0)
        guard frame >= headerEnd else { throw .negativeLength(value) }
        guard frame <= maxFrameLength else { throw .frameTooLong(length: UInt64(frame), maximum: maxFrameLength) }
        guard initialBytesToStrip <= frame else { throw .stripExceedsFrame(strip: initialBytesToStrip, frame: frame) }
        guard available >= frame else { return nil }
        return FrameBoundary(length: frame, payload: initialBytesToStrip..<frame)
    }

    public func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes {
        var length = payloadLength + lengthAdjustment
        if lengthIncludesLengthField { length += lengthFieldLength }
        guard length >= 0 else { throw .lengthOutOfRange(length: length, fieldBytes: lengthFieldLength) }
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
