#if canImport(Glibc)
import Glibc
#endif
import Gnet

// libFuzzer target for the frame decoders. Build and run (see the README):
//   swift build --scratch-path .build-fuzz --sanitize=fuzzer --product gnet-fuzz-codecs
//   GNET_FUZZ_CODEC=length-field .build-fuzz/debug/gnet-fuzz-codecs -max_total_time=60 -malloc_limit_mb=64
// GNET_FUZZ_CODEC (line, delimiter, fixed, length-field) fixes the decoder; unset, the first
// input byte picks one. The next bytes pick its parameters and where the input is cut into
// the pieces a connection would see; the rest is the stream.
//
// Checked for every input: no crash or trap; every boundary lies inside the bytes and makes
// progress; the payload lies inside its frame; no frame exceeds the maximum; the same bytes
// in one piece or in three give the same answer; nothing allocates in proportion to an
// announced length (libFuzzer's -malloc_limit_mb enforces it).

let selected: Int? = {
    guard let raw = getenv("GNET_FUZZ_CODEC") else { return nil }
    switch String(cString: raw) {
    case "line": return 0
    case "delimiter": return 1
    case "fixed": return 2
    case "length-field": return 3
    default:
        let message = "GNET_FUZZ_CODEC must be line, delimiter, fixed or length-field\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
}()

func makeCodec(_ p: [UInt8]) -> (any Codec)? {
    let kind = selected ?? Int(p[0] % 4)
    let maxFrame = 1 + Int(p[1]) * 64
    switch kind {
    case 0: return LineCodec(maxFrameLength: maxFrame, stripCarriageReturn: p[2] & 1 == 0)
    case 1: return DelimiterCodec(delimiter: p[2], maxFrameLength: maxFrame)
    case 2: return try? FixedLengthCodec(frameLength: 1 + Int(p[2]))
    default:
        let sizes = [1, 2, 3, 4, 8]
        return try? LengthFieldCodec(lengthFieldOffset: Int(p[2] % 8), lengthFieldLength: sizes[Int(p[3]) % 5],
                                     lengthAdjustment: Int(Int8(bitPattern: p[4])), initialBytesToStrip: Int(p[5] % 16),
                                     bigEndian: p[6] & 1 == 0, lengthIncludesLengthField: p[6] & 2 != 0, maxFrameLength: maxFrame + 16)
    }
}

func decode(_ codec: any Codec, _ bytes: UnsafeRawBufferPointer, cuts: (Int, Int)) -> Result<FrameBoundary?, CodecError> {
    let n = bytes.count
    let i = min(cuts.0, n), j = min(max(cuts.0, cuts.1), n)
    let view = InboundView(UnsafeRawBufferPointer(rebasing: bytes[0..<i]), UnsafeRawBufferPointer(rebasing: bytes[i..<j]),
                           UnsafeRawBufferPointer(rebasing: bytes[j..<n]))
    return Result { () throws(CodecError) in try codec.decode(view) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 9 else { return 0 }
    let params = Array(UnsafeBufferPointer(start: data, count: 9))
    guard let codec = makeCodec(params) else { return 0 }
    var stream = UnsafeRawBufferPointer(start: data + 9, count: size - 9)
    let cuts = (Int(params[7]), Int(params[7]) + Int(params[8]))
    while true {
        let whole = decode(codec, stream, cuts: (stream.count, stream.count))
        let pieces = decode(codec, stream, cuts: cuts)
        switch (whole, pieces) {
        case (.failure(let a), .failure(let b)):
            precondition(a == b, "one piece and three pieces disagree: \(a) vs \(b)")
            return 0
        case (.success(nil), .success(nil)):
            return 0
        case (.success(let a?), .success(let b?)):
            precondition(a == b, "one piece and three pieces disagree: \(a) vs \(b)")
            precondition(a.length > 0 && a.length <= stream.count, "boundary \(a.length) outside \(stream.count) bytes")
            precondition(a.length <= codec.maxFrameLength, "frame \(a.length) over the maximum \(codec.maxFrameLength)")
            precondition(a.payload.lowerBound >= 0 && a.payload.upperBound <= a.length, "payload \(a.payload) outside frame \(a.length)")
            stream = UnsafeRawBufferPointer(rebasing: stream[a.length...])
        default:
            preconditionFailure("one piece and three pieces disagree: \(whole) vs \(pieces)")
        }
    }
}
