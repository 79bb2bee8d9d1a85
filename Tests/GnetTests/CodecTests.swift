import Gnet
import Testing

/// Decodes `chunks` as a connection would receive them: bytes accumulate, every whole frame is
/// taken out in order. The accumulated bytes are shown to the codec in three pieces, split by
/// `cut`, to exercise views that straddle buffers.
func decodeFrames(_ codec: any Codec, _ chunks: [[UInt8]], cut: (Int) -> (Int, Int) = { n in (n / 3, 2 * n / 3) }) throws(CodecError) -> (frames: [[UInt8]], leftover: [UInt8]) {
    var buffer: [UInt8] = []
    var frames: [[UInt8]] = []
    for chunk in chunks {
        buffer += chunk
        while true {
            let (i, j) = cut(buffer.count)
            let b: FrameBoundary? = try buffer.withUnsafeBytes { raw -> Result<FrameBoundary?, CodecError> in
                let view = InboundView(UnsafeRawBufferPointer(rebasing: raw[0..<i]), UnsafeRawBufferPointer(rebasing: raw[i..<j]),
                                       UnsafeRawBufferPointer(rebasing: raw[j...]))
                return Result { () throws(CodecError) in try codec.decode(view) }
            }.get()
            guard let b else { break }
            #expect(b.length > 0 && b.length <= buffer.count && b.payload.lowerBound >= 0 && b.payload.upperBound <= b.length)
            frames.append(Array(buffer[b.payload]))
            buffer.removeFirst(b.length)
        }
    }
    return (frames, buffer)
}

struct CodecCase: Sendable, CustomTestStringConvertible {
    let name: String
    let codec: any Codec
    let input: [UInt8]
    let frames: [[UInt8]]
    let leftover: Int
    var testDescription: String { name }
}

let hello = Array("HELLO, WORLD".utf8)

let codecCases: [CodecCase] = {
    var c: [CodecCase] = []
    c.append(CodecCase(name: "line", codec: LineCodec(), input: Array("abc\ndef\r\n\nxyz".utf8),
                       frames: [Array("abc".utf8), Array("def".utf8), []], leftover: 3))
    c.append(CodecCase(name: "line keeping CR", codec: LineCodec(stripCarriageReturn: false), input: Array("def\r\n".utf8),
                       frames: [Array("def\r".utf8)], leftover: 0))
    c.append(CodecCase(name: "line at the maximum", codec: LineCodec(maxFrameLength: 8), input: Array("1234567\n".utf8),
                       frames: [Array("1234567".utf8)], leftover: 0))
    c.append(CodecCase(name: "delimiter", codec: DelimiterCodec(delimiter: 0), input: [0x61, 0, 0x62, 0x62, 0, 0, 0x63],
                       frames: [[0x61], [0x62, 0x62], []], leftover: 1))
    c.append(CodecCase(name: "fixed length", codec: try! FixedLengthCodec(frameLength: 3), input: Array("abcdefgh".utf8),
                       frames: [Array("abc".utf8), Array("def".utf8)], leftover: 2))
    c.append(CodecCase(name: "length field, zero-length payload", codec: try! LengthFieldCodec(),
                       input: [0, 0, 0, 3, 0x61, 0x62, 0x63, 0, 0, 0, 0, 0, 0], frames: [Array("abc".utf8), []], leftover: 2))
    // netty's documented examples
    c.append(CodecCase(name: "netty: 2-byte length, strip 0", codec: try! LengthFieldCodec(lengthFieldLength: 2, initialBytesToStrip: 0),
                       input: [0x00, 0x0C] + hello, frames: [[0x00, 0x0C] + hello], leftover: 0))
    c.append(CodecCase(name: "netty: 2-byte length, strip 2", codec: try! LengthFieldCodec(lengthFieldLength: 2, initialBytesToStrip: 2),
                       input: [0x00, 0x0C] + hello, frames: [hello], leftover: 0))
    c.append(CodecCase(name: "netty: length includes header", codec: try! LengthFieldCodec(lengthFieldLength: 2, lengthAdjustment: -2, initialBytesToStrip: 0),
                       input: [0x00, 0x0E] + hello, frames: [[0x00, 0x0E] + hello], leftover: 0))
    c.append(CodecCase(name: "netty: header before length", codec: try! LengthFieldCodec(lengthFieldOffset: 2, lengthFieldLength: 3, initialBytesToStrip: 0),
                       input: [0xCA, 0xFE, 0x00, 0x00, 0x0C] + hello, frames: [[0xCA, 0xFE, 0x00, 0x00, 0x0C] + hello], leftover: 0))
    c.append(CodecCase(name: "netty: header after length", codec: try! LengthFieldCodec(lengthFieldLength: 3, lengthAdjustment: 2, initialBytesToStrip: 0),
                       input: [0x00, 0x00, 0x0C, 0xCA, 0xFE] + hello, frames: [[0x00, 0x00, 0x0C, 0xCA, 0xFE] + hello], leftover: 0))
    c.append(CodecCase(name: "netty: HDR1 LEN HDR2, strip 3", codec: try! LengthFieldCodec(lengthFieldOffset: 1, lengthFieldLength: 2, lengthAdjustment: 1, initialBytesToStrip: 3),
                       input: [0xCA, 0x00, 0x0C, 0xFE] + hello, frames: [[0xFE] + hello], leftover: 0))
    c.append(CodecCase(name: "netty: whole-message length, strip 3", codec: try! LengthFieldCodec(lengthFieldOffset: 1, lengthFieldLength: 2, lengthAdjustment: -3, initialBytesToStrip: 3),
                       input: [0xCA, 0x00, 0x10, 0xFE] + hello, frames: [[0xFE] + hello], leftover: 0))
    c.append(CodecCase(name: "8-byte little-endian length", codec: try! LengthFieldCodec(lengthFieldLength: 8, bigEndian: false),
                       input: [2, 0, 0, 0, 0, 0, 0, 0, 0x41, 0x42, 1, 0, 0, 0, 0, 0, 0, 0, 0x43], frames: [[0x41, 0x42], [0x43]], leftover: 0))
    c.append(CodecCase(name: "1-byte length", codec: try! LengthFieldCodec(lengthFieldLength: 1),
                       input: [1, 9, 0, 2, 7], frames: [[9], [], ], leftover: 2))
    return c
}()

@Suite struct CodecTests {
    /// SwiftNIO-style verifier: each case whole, one byte at a time, split at every position,
    /// with the pieces of the view cut at every pair of positions; frames identical every time.
    @Test(arguments: codecCases)
    func verifier(_ c: CodecCase) throws {
        let whole = try decodeFrames(c.codec, [c.input])
        #expect(whole.frames == c.frames)
        #expect(whole.leftover.count == c.leftover)
        let bytewise = try decodeFrames(c.codec, c.input.map { [$0] })
        #expect(bytewise.frames == c.frames && bytewise.leftover.count == c.leftover)
        for split in 0...c.input.count {
            let r = try decodeFrames(c.codec, [Array(c.input[..<split]), Array(c.input[split...])])
            #expect(r.frames == c.frames, "split at \(split)")
        }
        for i in 0...c.input.count {
            for j in i...c.input.count {
                let r = try decodeFrames(c.codec, [c.input], cut: { n in (min(i, n), min(j, n)) })
                #expect(r.frames == c.frames, "pieces cut at \(i), \(j)")
            }
        }
    }

    @Test func allCasesOfOneCodecConcatenated() throws {
        for name in ["line", "length field, zero-length payload"] {
            let c = codecCases.first { $0.name == name }!
            let body = Array(c.input[..<(c.input.count - c.leftover)])
            let input = body + body + body
            let r = try decodeFrames(c.codec, input.map { [$0] })
            #expect(r.frames == c.frames + c.frames + c.frames)
        }
    }

    @Test func errorsAreRaisedAsSoonAsTheHeaderShowsThem() throws {
        let four = try LengthFieldCodec()
        #expect(throws: CodecError.frameTooLong(length: 0xFFFF_FFFF + 4, maximum: defaultMaxFrameLength)) {
            try decodeFrames(four, [[0xFF, 0xFF, 0xFF, 0xFF]])
        }
        let eight = try LengthFieldCodec(lengthFieldLength: 8)
        #expect(throws: CodecError.frameTooLong(length: UInt64.max, maximum: defaultMaxFrameLength)) {
            try decodeFrames(eight, [[UInt8](repeating: 0xFF, count: 8)])
        }
        let negative = try LengthFieldCodec(lengthFieldLength: 2, lengthAdjustment: -10)
        #expect(throws: CodecError.negativeLength(3)) { try decodeFrames(negative, [[0, 3, 1, 2, 3]]) }
        let strip = try LengthFieldCodec(lengthFieldLength: 2, initialBytesToStrip: 10)
        #expect(throws: CodecError.stripExceedsFrame(strip: 10, frame: 4)) { try decodeFrames(strip, [[0, 2, 1, 2]]) }
        #expect(throws: CodecError.frameTooLong(length: 9, maximum: 8)) { try decodeFrames(LineCodec(maxFrameLength: 8), [Array("123456789".utf8)]) }
        #expect(throws: CodecError.frameTooLong(length: 4, maximum: 4)) { try decodeFrames(DelimiterCodec(delimiter: 0, maxFrameLength: 4), [[1, 2, 3, 4]]) }
        let small = try LengthFieldCodec(maxFrameLength: 100)
        #expect(throws: CodecError.frameTooLong(length: 105, maximum: 100)) { try decodeFrames(small, [[0, 0, 0, 101]]) }
    }

    @Test func invalidConfigurationsAreRefused() {
        #expect(throws: CodecError.self) { try LengthFieldCodec(lengthFieldLength: 5) }
        #expect(throws: CodecError.self) { try LengthFieldCodec(lengthFieldOffset: -1) }
        #expect(throws: CodecError.self) { try LengthFieldCodec(initialBytesToStrip: -1) }
        #expect(throws: CodecError.self) { try LengthFieldCodec(lengthFieldOffset: 10, maxFrameLength: 8) }
        #expect(throws: CodecError.self) { try FixedLengthCodec(frameLength: 0) }
    }

    @Test func encodersCheckRangesAndRoundTrip() throws {
        for (bytes, limit) in [(1, 255), (2, 65535), (3, 16_777_215)] {
            let c = try LengthFieldCodec(lengthFieldLength: bytes)
            #expect(try c.affixes(payloadLength: limit).prefix.count == bytes)
            #expect(throws: CodecError.lengthOutOfRange(length: limit + 1, fieldBytes: bytes)) { try c.affixes(payloadLength: limit + 1) }
        }
        let inc = try LengthFieldCodec(lengthFieldLength: 1, lengthIncludesLengthField: true)
        #expect(try inc.affixes(payloadLength: 254).prefix.bytes == [255])
        #expect(throws: CodecError.negativeLength(0)) { try decodeFrames(inc, [[0]]) }
        #expect(throws: CodecError.lengthOutOfRange(length: 256, fieldBytes: 1)) { try inc.affixes(payloadLength: 255) }
        let adj = try LengthFieldCodec(lengthFieldLength: 2, lengthAdjustment: -5)
        #expect(throws: CodecError.lengthOutOfRange(length: -2, fieldBytes: 2)) { try adj.affixes(payloadLength: 3) }
        #expect(try LengthFieldCodec().affixes(payloadLength: 0).prefix.bytes == [0, 0, 0, 0])
        #expect(try LengthFieldCodec(lengthFieldLength: 3, bigEndian: false).affixes(payloadLength: 0x010203).prefix.bytes == [3, 2, 1])
        #expect(try LengthFieldCodec(lengthFieldLength: 8).affixes(payloadLength: 0x0102).prefix.bytes == [0, 0, 0, 0, 0, 0, 1, 2])
        let fixed = try FixedLengthCodec(frameLength: 3)
        #expect(throws: CodecError.fixedLengthMismatch(length: 4, frameLength: 3)) { try fixed.affixes(payloadLength: 4) }
        #expect(try fixed.affixes(payloadLength: 6) == FrameAffixes())
        #expect(try LineCodec(encodeCRLF: true).affixes(payloadLength: 1).suffix.bytes == [13, 10])
        #expect(try DelimiterCodec(delimiter: 7).affixes(payloadLength: 1).suffix.bytes == [7])

        // Encoded frames decode back to their payloads.
        let codecs: [any Codec] = [LineCodec(), DelimiterCodec(delimiter: 0), try LengthFieldCodec(), try LengthFieldCodec(lengthFieldLength: 2, bigEndian: false),
                                   try LengthFieldCodec(lengthFieldLength: 1, lengthIncludesLengthField: true)]
        let payloads: [[UInt8]] = [[], [1], Array("hello".utf8), randomBytes(200, seed: 4).map { $0 == 10 || $0 == 0 ? 1 : $0 }]
        for codec in codecs {
            var wire: [UInt8] = []
            for p in payloads {
                let a = try codec.affixes(payloadLength: p.count)
                wire += a.prefix.bytes + p + a.suffix.bytes
            }
            #expect(try decodeFrames(codec, [wire]).frames == payloads, "\(codec)")
        }
    }
}
