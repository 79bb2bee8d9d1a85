/// Reads (and discards) a chunked request body (RFC 9112 §7.1): chunk sizes in hex with
/// optional extensions, CRLF after each chunk, a last chunk of size 0, trailers, an empty line.
/// Invalid sizes are refused, never guessed; the total is bounded.
public struct ChunkedBodyDecoder: Sendable {
    enum Step: Sendable { case size, data(Int), dataEnd, trailer }
    /// Where the body stands: more bytes needed, complete, malformed (why), or over the limit.
    public enum State: Equatable, Sendable { case needMore, done, invalid(String), tooLarge }

    private var step = Step.size
    private var total = 0
    private let maxBody: Int

    /// A decoder refusing bodies whose chunk data adds up to more than `maxBody` bytes.
    public init(maxBody: Int) { self.maxBody = maxBody }

    /// Consumes what it can of `bytes`; returns how many bytes were used and the state.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, state: State) {
        var at = 0
        while true {
            switch step {
            case .size:
                guard let nl = bytes[at...].firstIndex(of: 0x0A) else {
                    return bytes.count - at > 1024 ? (at, .invalid("chunk size line too long")) : (at, .needMore)
                }
                var line = bytes[at..<nl]
                if line.last == 0x0D { line = line.dropLast() }
                let sizeEnd = line.firstIndex(of: 0x3B) ?? line.endIndex  // extensions after ';'
                let digits = line[line.startIndex..<sizeEnd]
                guard !digits.isEmpty, digits.count <= 15 else { return (at, .invalid("invalid chunk size")) }
                var size = 0
                for d in digits {
                    switch d {
                    case 0x30...0x39: size = size * 16 + Int(d - 0x30)
                    case 0x41...0x46: size = size * 16 + Int(d - 0x37)
                    case 0x61...0x66: size = size * 16 + Int(d - 0x57)
                    default: return (at, .invalid("invalid chunk size"))
                    }
                }
                total += size
                if total > maxBody { return (at, .tooLarge) }
                at = nl + 1
                step = size == 0 ? .trailer : .data(size)
            case .data(let left):
                let n = min(left, bytes.count - at)
                at += n
                if n < left { step = .data(left - n); return (at, .needMore) }
                step = .dataEnd
            case .dataEnd:
                if bytes.count - at < 2 {
                    if bytes.count - at == 1 && bytes[at] != 0x0D && bytes[at] != 0x0A { return (at, .invalid("missing CRLF after chunk")) }
                    if bytes.count - at == 1 && bytes[at] == 0x0A { at += 1; step = .size; continue }
                    return (at, .needMore)
                }
                if bytes[at] == 0x0D && bytes[at + 1] == 0x0A { at += 2 } else if bytes[at] == 0x0A { at += 1 } else {
                    return (at, .invalid("missing CRLF after chunk"))
                }
                step = .size
            case .trailer:
                guard let nl = bytes[at...].firstIndex(of: 0x0A) else {
                    return bytes.count - at > 8192 ? (at, .invalid("trailer too long")) : (at, .needMore)
                }
                let empty = nl == at || (nl == at + 1 && bytes[at] == 0x0D)
                at = nl + 1
                if empty { return (at, .done) }
            }
        }
    }
}
