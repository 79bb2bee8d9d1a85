#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// Complete lines of a connection's input, handed out in place: one `peek` of what is
/// buffered, lines found with `memchr`, one `discard` of what was handled. Nothing is copied
/// and nothing is moved per line, so a client sending megabytes of short lines costs time in
/// proportion to the bytes (an array of pending bytes trimmed from the front per line cost the
/// square).
enum LineReader {
    enum Outcome: Equatable {
        /// Every complete line was handled; the start of the next may be buffered.
        case waiting
        /// `body` asked to stop; the lines after it stay buffered.
        case stopped
        /// A line (or that many bytes without a newline) is longer than the limit. The lines
        /// before it were handled; nothing of it was.
        case tooLong
    }

    /// Calls `body` with each complete, non-blank line buffered on `c`, without its `\n` (a `\r`
    /// before it is kept), consuming each line after `body` returns. `body` returns false to stop.
    /// Blank lines (`\n` or `\r\n` alone) are consumed without a call, a byte or two at a time.
    static func forEachLine(_ c: Conn, limit: Int, _ body: (UnsafeRawBufferPointer) -> Bool) -> Outcome {
        guard c.inboundBuffered > 0, let view = try? c.peek(), let base = view.baseAddress else { return .waiting }
        var offset = 0
        defer { c.discard(offset) }
        while offset < view.count {
            if view[offset] == UInt8(ascii: "\n") {
                offset += 1
                continue
            }
            if view[offset] == UInt8(ascii: "\r"), offset + 1 < view.count, view[offset + 1] == UInt8(ascii: "\n") {
                offset += 2
                continue
            }
            let rest = view.count - offset
            guard let nl = memchr(base + offset, 0x0A, min(rest, limit + 1)) else {
                return rest > limit ? .tooLong : .waiting
            }
            let length = UnsafeRawPointer(nl) - (base + offset)
            let line = UnsafeRawBufferPointer(start: base + offset, count: length)
            let more = body(line)
            offset += length + 1
            if !more { return .stopped }
        }
        return .waiting
    }
}
