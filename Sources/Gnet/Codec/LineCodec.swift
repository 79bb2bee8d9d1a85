/// Frames that end at `\n` (netty's LineBasedFrameDecoder). The payload excludes the newline
/// and, with `stripCarriageReturn`, a `\r` right before it. Encoding appends `\n` (or `\r\n`
/// with `encodeCRLF`).
public struct LineCodec: Codec {
    public let maxFrameLength: Int
    public let stripCarriageReturn: Bool
    public let encodeCRLF: Bool

    /// `maxFrameLength` counts the line with its terminator.
    public init(maxFrameLength: Int = defaultMaxFrameLength, stripCarriageReturn: Bool = true, encodeCRLF: Bool = false) {
        self.maxFrameLength = max(1, maxFrameLength)
        self.stripCarriageReturn = stripCarriageReturn
        self.encodeCRLF = encodeCRLF
    }

    public func decode(_ input: InboundView) throws(CodecError) -> FrameBoundary? {
        guard let nl = input.firstIndex(of: 0x0A, to: maxFrameLength) else {
            if input.count >= maxFrameLength { throw .frameTooLong(length: UInt64(input.count), maximum: maxFrameLength) }
            return nil
        }
        var end = nl
        if stripCarriageReturn && nl > 0 && input[nl - 1] == 0x0D { end -= 1 }
        return FrameBoundary(length: nl + 1, payload: 0..<end)
    }

    public func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes {
        var f = FrameAffixes()
        if encodeCRLF { f.suffix.append(0x0D) }
        f.suffix.append(0x0A)
        return f
    }
}

/// Frames that end at one configurable byte; the payload excludes it, encoding appends it.
public struct DelimiterCodec: Codec {
    public let delimiter: UInt8
    public let maxFrameLength: Int

    public init(delimiter: UInt8, maxFrameLength: Int = defaultMaxFrameLength) {
        self.delimiter = delimiter
        self.maxFrameLength = max(1, maxFrameLength)
    }

    public func decode(_ input: InboundView) throws(CodecError) -> FrameBoundary? {
        guard let at = input.firstIndex(of: delimiter, to: maxFrameLength) else {
            if input.count >= maxFrameLength { throw .frameTooLong(length: UInt64(input.count), maximum: maxFrameLength) }
            return nil
        }
        return FrameBoundary(length: at + 1, payload: 0..<at)
    }

    public func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes {
        var f = FrameAffixes()
        f.suffix.append(delimiter)
        return f
    }
}

/// Frames of exactly `frameLength` bytes. Encoding checks that a payload is a whole number of
/// frames and adds nothing.
public struct FixedLengthCodec: Codec {
    public let frameLength: Int
    public let maxFrameLength: Int

    /// `frameLength` must be positive and at most `maxFrameLength` (a frame is buffered whole
    /// before it is delivered, so the maximum bounds what one connection may make a loop hold).
    public init(frameLength: Int, maxFrameLength: Int = defaultMaxFrameLength) throws(CodecError) {
        guard frameLength > 0 else { throw .invalidConfiguration("frame length must be positive, not \(frameLength)") }
        guard frameLength <= maxFrameLength else {
            throw .invalidConfiguration("frame length \(frameLength) exceeds the maximum frame length \(maxFrameLength)")
        }
        self.frameLength = frameLength
        self.maxFrameLength = maxFrameLength
    }

    public func decode(_ input: InboundView) throws(CodecError) -> FrameBoundary? {
        input.count >= frameLength ? FrameBoundary(length: frameLength, payload: 0..<frameLength) : nil
    }

    public func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes {
        guard payloadLength % frameLength == 0 else { throw .fixedLengthMismatch(length: payloadLength, frameLength: frameLength) }
        return FrameAffixes()
    }
}
