#if canImport(Glibc)
import Glibc
#endif
import GnetServices

// libFuzzer target for the HTTP request-head parser and the chunked-body decoder
// (Tests/scripts/fuzz.sh builds and runs it). Checked for every input: no crash or trap; a
// complete head never claims more bytes than it was given; every refusal carries one of the
// statuses the server sends; parsing a prefix of a complete head never reports an error (so a
// head split across reads cannot be refused); the chunked decoder never consumes more than it
// was given and reaches the same state fed whole or byte by byte.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var limits = HTTPLimits()
    limits.maxRequestLine = 512
    limits.maxHead = 2048
    limits.maxHeaders = 16
    switch HTTPHeadParser.parse(bytes, limits: limits) {
    case .complete(_, let length):
        precondition(length > 0 && length <= size, "head length \(length) outside \(size) bytes")
        for cut in stride(from: 0, to: length, by: max(1, length / 16)) {
            let r = HTTPHeadParser.parse(UnsafeRawBufferPointer(rebasing: bytes[0..<cut]), limits: limits)
            if case .failed(let e) = r, e.status != 414, e.status != 431 {
                preconditionFailure("a prefix of \(cut) bytes of a valid head was refused: \(e)")
            }
        }
    case .failed(let e):
        precondition([400, 414, 431, 501, 505].contains(e.status), "unexpected status \(e.status)")
    case .incomplete:
        break
    }
    var whole = ChunkedBodyDecoder(maxBody: 1 << 16)
    let w = whole.consume(bytes)
    precondition(w.consumed <= size, "chunked decoder consumed \(w.consumed) of \(size)")
    if w.state == .done || w.state == .needMore {
        var stepwise = ChunkedBodyDecoder(maxBody: 1 << 16)
        var buffer: [UInt8] = []
        var state = ChunkedBodyDecoder.State.needMore
        var used = 0
        for b in bytes {
            buffer.append(b)
            let r = buffer.withUnsafeBytes { stepwise.consume($0) }
            buffer.removeFirst(r.consumed)
            used += r.consumed
            state = r.state
            if state != .needMore { break }
        }
        precondition(state == w.state, "whole: \(w.state), byte by byte: \(state)")
        if state == .done { precondition(used == w.consumed, "consumed \(w.consumed) whole, \(used) byte by byte") }
    }
    return 0
}
