#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Limits on what a client may send before the server refuses it.
public struct HTTPLimits: Sendable {
    /// Longest request line (method, target, version) → 414 past it.
    public var maxRequestLine = 8 * 1024
    /// Longest header section, request line included → 431 past it.
    public var maxHead = 16 * 1024
    /// Most header fields → 431 past it.
    public var maxHeaders = 100
    /// The defaults: 8 KiB request line, 16 KiB head, 100 fields.
    public init() {}
}

/// Why a request head was refused, with the status to answer before closing.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The status to answer with: 400, 414, 431, 501 or 505.
    public let status: Int
    /// What was wrong, for the response body and the log.
    public let reason: String
    /// `status: reason`.
    public var description: String { "\(status): \(reason)" }
}

/// What a request head declares, as positions in the head's own bytes: everything the server
/// acts on, found without copying or allocating (the per-request path of `HTTPService`).
/// Ranges are byte offsets from the start of the head. Stored packed (each range in one word,
/// 64 bytes in all) so that handing a layout from the scanner to the responder is a few moves,
/// not a `memcpy`; heads are shorter than 4 GiB (the scanner refuses longer ones).
public struct HTTPHeadLayout: Equatable, Sendable {
    /// A range packed as `lowerBound << 32 | upperBound`; `absent` for an optional not given.
    private static let absent = UInt64.max
    private var methodSpan: UInt64 = 0
    private var targetSpan: UInt64 = 0
    private var hostSpan = absent
    private var ifModifiedSinceSpan = absent
    private var rangeSpan = absent
    private var declaredLength = -1
    private var fieldCount: UInt32 = 0
    private var minor: UInt8 = 1

    @inline(__always) private static func pack(_ r: Range<Int>) -> UInt64 { UInt64(truncatingIfNeeded: r.lowerBound) << 32 | UInt64(truncatingIfNeeded: r.upperBound) & 0xFFFF_FFFF }
    @inline(__always) private static func unpack(_ s: UInt64) -> Range<Int> { Int(s >> 32)..<Int(s & 0xFFFF_FFFF) }
    @inline(__always) private static func pack(_ r: Range<Int>?) -> UInt64 { r.map { pack($0) } ?? absent }
    @inline(__always) private static func unpackOptional(_ s: UInt64) -> Range<Int>? { s == absent ? nil : unpack(s) }

    /// The method token.
    public var method: Range<Int> {
        get { Self.unpack(methodSpan) }
        set { methodSpan = Self.pack(newValue) }
    }
    /// The request target, query included (bytes 0x21–0x7E).
    public var target: Range<Int> {
        get { Self.unpack(targetSpan) }
        set { targetSpan = Self.pack(newValue) }
    }
    /// The method is `HEAD` (the response has no body).
    public var isHEAD = false
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int {
        get { Int(minor) }
        set { minor = UInt8(truncatingIfNeeded: newValue) }
    }
    /// The `Host` value (at most one is accepted; HTTP/1.1 requires it).
    public var host: Range<Int>? {
        get { Self.unpackOptional(hostSpan) }
        set { hostSpan = Self.pack(newValue) }
    }
    /// Whether a `Host` field was given (without unpacking its range).
    public var hasHost: Bool { hostSpan != Self.absent }
    /// The declared body length; nil when none was declared.
    public var contentLength: Int? {
        get { declaredLength < 0 ? nil : declaredLength }
        set { declaredLength = newValue ?? -1 }
    }
    /// A body follows the head: a positive `Content-Length`, or chunked.
    public var hasBody: Bool { chunked || declaredLength > 0 }
    /// The body is chunked (`Transfer-Encoding: chunked`, never with `Content-Length`).
    public var chunked = false
    /// Whether the connection stays open after the response (version default, then `Connection`).
    public var keepAlive = true
    /// `Expect: 100-continue` was sent.
    public var expectContinue = false
    /// The `If-Modified-Since` value.
    public var ifModifiedSince: Range<Int>? {
        get { Self.unpackOptional(ifModifiedSinceSpan) }
        set { ifModifiedSinceSpan = Self.pack(newValue) }
    }
    /// The `Range` value.
    public var range: Range<Int>? {
        get { Self.unpackOptional(rangeSpan) }
        set { rangeSpan = Self.pack(newValue) }
    }
    /// Header fields in the head.
    public var headerCount: Int {
        get { Int(fieldCount) }
        set { fieldCount = UInt32(truncatingIfNeeded: newValue) }
    }
    /// An empty layout, to be filled by `HTTPHeadParser.scan`.
    public init() {}
}

/// The parts of a request head the server acts on, as strings (`HTTPHeadLayout` resolved
/// against the head's bytes).
public struct HTTPRequestHead: Equatable, Sendable {
    /// The method token.
    public var method = ""
    /// The request target, query included.
    public var target = ""
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion = 1
    /// The `Host` value.
    public var host: String? = nil
    /// The declared body length; nil when none was declared.
    public var contentLength: Int? = nil
    /// The body is chunked.
    public var chunked = false
    /// Whether the connection stays open after the response (version default, then `Connection`).
    public var keepAlive = true
    /// `Expect: 100-continue` was sent.
    public var expectContinue = false
    /// The `If-Modified-Since` value.
    public var ifModifiedSince: String? = nil
    /// The `Range` value.
    public var range: String? = nil
    /// Header fields in the head.
    public var headerCount = 0
    /// An empty head.
    public init() {}

    /// The head whose bytes are `bytes` and whose layout is `layout`.
    public init(_ layout: HTTPHeadLayout, in bytes: UnsafeRawBufferPointer) {
        func text(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }
        method = text(layout.method)
        target = text(layout.target)
        minorVersion = layout.minorVersion
        host = layout.host.map(text)
        contentLength = layout.contentLength
        chunked = layout.chunked
        keepAlive = layout.keepAlive
        expectContinue = layout.expectContinue
        ifModifiedSince = layout.ifModifiedSince.map(text)
        range = layout.range.map(text)
        headerCount = layout.headerCount
    }
}

/// Result of looking at the buffered bytes of a connection.
public enum HTTPHeadParseResult: Equatable, Sendable {
    /// The head is not complete yet (and within the limits so far).
    case incomplete
    /// A whole head of `length` bytes.
    case complete(HTTPRequestHead, length: Int)
    case failed(HTTPParseError)
}

/// Result of `HTTPHeadParser.scan`: the layout itself is written to the caller's variable.
public enum HTTPHeadScanResult: Equatable, Sendable {
    /// The head is not complete yet (and within the limits so far).
    case incomplete
    /// A whole head of `length` bytes.
    case complete(length: Int)
    case failed(HTTPParseError)
}

/// An HTTP/1.x request-head parser that refuses, never guesses: obsolete line folding, space
/// before a colon, bare CR, conflicting or malformed lengths, `Content-Length` together with
/// `Transfer-Encoding`, and unknown transfer codings are errors (the smuggling defences of
/// RFC 9112 §6.3 and §11.2). Lines end in CRLF (a lone LF is accepted, as RFC 9112 §2.2 allows).
/// Only complete lines are judged, so any prefix of a valid head is `incomplete`, never an error.
public enum HTTPHeadParser {
    /// Parses and copies the parts into strings (tests, tools, cold paths).
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: HTTPLimits = HTTPLimits()) -> HTTPHeadParseResult {
        var layout = HTTPHeadLayout()
        switch scan(bytes, limits: limits, into: &layout) {
        case .incomplete: return .incomplete
        case .failed(let e): return .failed(e)
        case .complete(let length): return .complete(HTTPRequestHead(layout, in: bytes), length: length)
        }
    }

    /// Finds the head at the start of `bytes` and writes where its parts are into `layout`:
    /// memchr for the request line, one pass over each header line's bytes, no allocation
    /// unless it fails.
    public static func scan(_ bytes: UnsafeRawBufferPointer, limits: HTTPLimits, into layout: inout HTTPHeadLayout) -> HTTPHeadScanResult {
        guard let raw = bytes.baseAddress, bytes.count > 0 else { return .incomplete }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        let n = bytes.count
        let searchEnd = min(n, limits.maxHead, Int(UInt32.max))  // layouts hold 32-bit offsets
        layout = HTTPHeadLayout()
        var lineStart = 0
        var connectionClose = false, connectionKeepAlive = false
        var transferEncoding: Range<Int>? = nil
        var transferEncodings = 0
        // The request line. The usual one (`GET /target HTTP/1.1` CRLF) is read in one pass;
        // any other (methods, targets, a lone LF, not wholly here yet) is found with memchr and
        // judged by `requestLine`.
        if let next = usualRequestLine(p, searchEnd, limits.maxRequestLine, into: &layout) {
            lineStart = next
        } else {
            while true {
                guard lineStart < searchEnd, let found = memchr(p + lineStart, 0x0A, searchEnd - lineStart) else {
                    if n > limits.maxRequestLine { return .failed(.init(status: 414, reason: "request line too long")) }
                    return incompleteOrTooLarge(n, limits)
                }
                let nl = UnsafeRawPointer(found) - raw
                var lineEnd = nl
                if lineEnd > lineStart && p[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                if lineEnd == lineStart {
                    // RFC 9112 §2.2: ignore at least one empty line before the request line.
                    if nl + 1 > 4 { return .failed(.init(status: 400, reason: "empty lines before the request")) }
                    lineStart = nl + 1
                    continue
                }
                if lineEnd - lineStart > limits.maxRequestLine { return .failed(.init(status: 414, reason: "request line too long")) }
                if let e = requestLine(p, lineStart, lineEnd, into: &layout) { return .failed(e) }
                lineStart = nl + 1
                break
            }
        }
        // Header lines: each byte is looked at once, by the checks that also find the line's end
        // (no separate search for LF). A line is judged as far as it has arrived: bytes that
        // are wrong now stay wrong, so a prefix of a valid head is never refused.
        while true {
            guard lineStart < searchEnd else { return incompleteOrTooLarge(n, limits) }
            let first = p[lineStart]
            if first == 0x0D || first == 0x0A {
                var end = lineStart + 1
                if first == 0x0D {
                    guard end < searchEnd else { return incompleteOrTooLarge(n, limits) }
                    guard p[end] == 0x0A else { return .failed(.init(status: 400, reason: "bare CR in the request head")) }
                    end += 1
                }
                // End of the head: settle the body framing.
                if let te = transferEncoding {
                    if layout.contentLength != nil { return .failed(.init(status: 400, reason: "both Content-Length and Transfer-Encoding")) }
                    guard transferEncodings == 1, equalsIgnoringCase(p, te, "chunked") else {
                        let shown = transferEncodings == 1 ? String(decoding: bytes[te], as: UTF8.self) : "more than one Transfer-Encoding"
                        return .failed(.init(status: 501, reason: "unsupported transfer coding \"\(shown)\""))
                    }
                    layout.chunked = true
                }
                if layout.minorVersion == 1 && !layout.hasHost { return .failed(.init(status: 400, reason: "HTTP/1.1 request without Host")) }
                if connectionClose { layout.keepAlive = false } else if connectionKeepAlive { layout.keepAlive = true }
                // HTTP/1.0 has no chunked framing: the message is answered, then the connection
                // closes whatever it asked for (RFC 9112 §6.1).
                if layout.chunked && layout.minorVersion == 0 { layout.keepAlive = false }
                return .complete(length: end)
            }
            layout.headerCount += 1
            if layout.headerCount > limits.maxHeaders { return .failed(.init(status: 431, reason: "too many header fields")) }
            if first == 0x20 || first == 0x09 { return .failed(.init(status: 400, reason: "obsolete line folding")) }
            var colon = lineStart
            let kind: HeaderKind
            if let known = knownField(p, lineStart, searchEnd) {
                kind = known.kind
                colon = known.colon
            } else {
                while colon < searchEnd && isTokenByte(p[colon]) { colon += 1 }
                guard colon < searchEnd else { return incompleteOrTooLarge(n, limits) }
                guard p[colon] == 0x3A, colon > lineStart else {
                    if p[colon] == 0x0D || p[colon] == 0x0A { return .failed(.init(status: 400, reason: "header field without a colon")) }
                    return .failed(.init(status: 400, reason: colon == lineStart ? "header field without a name" : "invalid header field name"))
                }
                kind = .other  // knownField recognizes every interpreted name that is wholly here
            }
            // The value runs to CR LF (or a lone LF); HTAB is allowed, other control bytes are
            // not. Eight bytes at a time while none is a control byte (SWAR: a byte below 0x20
            // or equal to 0x7F sets its high bit); the byte loop judges the rest exactly.
            var i = colon + 1
            var lineEnd = 0, next = 0
            scanning: while true {
                while i + 8 <= searchEnd {
                    let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                    let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                    let x = w ^ (ones &* 0x7F)
                    if ((w &- ones &* 0x20) & ~w | (x &- ones) & ~x) & highs != 0 { break }
                    i += 8
                }
                guard i < searchEnd else { return incompleteOrTooLarge(n, limits) }
                let b = p[i]
                if (b >= 0x20 && b != 0x7F) || b == 0x09 { i += 1; continue }
                if b == 0x0A { lineEnd = i; next = i + 1; break scanning }
                if b == 0x0D {
                    guard i + 1 < searchEnd else { return incompleteOrTooLarge(n, limits) }
                    guard p[i + 1] == 0x0A else { return .failed(.init(status: 400, reason: "bare CR in the request head")) }
                    lineEnd = i; next = i + 2
                    break scanning
                }
                return .failed(.init(status: 400, reason: "control character in a header value"))
            }
            defer { lineStart = next }
            let value = trimmed(p, colon + 1..<lineEnd)
            switch kind {
            case .host:
                if layout.hasHost { return .failed(.init(status: 400, reason: "more than one Host")) }
                layout.host = value
            case .contentLength:
                guard let length = contentLength(p, value) else { return .failed(.init(status: 400, reason: "invalid Content-Length")) }
                if length < 0 { return .failed(.init(status: 400, reason: "conflicting Content-Length values")) }
                if let existing = layout.contentLength, existing != length { return .failed(.init(status: 400, reason: "conflicting Content-Length headers")) }
                layout.contentLength = length
            case .transferEncoding:
                if transferEncoding == nil { transferEncoding = value }
                transferEncodings += 1
            case .connection:
                forEachToken(p, value) { t in
                    if equalsIgnoringCase(p, t, "close") { connectionClose = true }
                    if equalsIgnoringCase(p, t, "keep-alive") { connectionKeepAlive = true }
                }
            case .expect:
                if equalsIgnoringCase(p, value, "100-continue") { layout.expectContinue = true }
            case .ifModifiedSince:
                layout.ifModifiedSince = value
            case .range:
                layout.range = value
            case .other:
                break
            }
        }
    }

    /// Nothing wrong yet: incomplete, unless the head has already reached `maxHead` bytes.
    private static func incompleteOrTooLarge(_ n: Int, _ limits: HTTPLimits) -> HTTPHeadScanResult {
        n >= limits.maxHead ? .failed(.init(status: 431, reason: "request head too large")) : .incomplete
    }

    /// `GET /target HTTP/1.1` (or `HTTP/1.0`) CRLF at the start of `p`, read in one pass:
    /// the offset after the line, or nil when the line is not of that shape or not wholly here
    /// (then `requestLine` judges it, refusing nothing this accepts).
    @inline(__always)
    private static func usualRequestLine(_ p: UnsafePointer<UInt8>, _ end: Int, _ maxLine: Int, into layout: inout HTTPHeadLayout) -> Int? {
        guard end > 5, UnsafeRawPointer(p).loadUnaligned(as: UInt32.self) == 0x2054_4547, p[4] == 0x2F else { return nil }  // "GET /"
        var i = 5
        while i < end && p[i] > 0x20 && p[i] < 0x7F { i += 1 }
        // SP, the version (eight bytes), CR LF.
        guard i + 11 <= end, i + 9 <= maxLine, p[i] == 0x20, p[i + 9] == 0x0D, p[i + 10] == 0x0A else { return nil }
        guard setVersion(UnsafeRawPointer(p + i + 1).loadUnaligned(as: UInt64.self), into: &layout) else { return nil }
        layout.method = 0..<3
        layout.target = 4..<i
        layout.isHEAD = false
        return i + 11
    }

    /// Sets the version and its keep-alive default from the eight bytes after the target:
    /// `HTTP/1.1` or `HTTP/1.0` (one word compare each, little-endian); false for any other.
    @inline(__always)
    private static func setVersion(_ word: UInt64, into layout: inout HTTPHeadLayout) -> Bool {
        switch word {
        case 0x312E_312F_5054_5448: layout.minorVersion = 1; layout.keepAlive = true  // "HTTP/1.1"
        case 0x302E_312F_5054_5448: layout.minorVersion = 0; layout.keepAlive = false  // "HTTP/1.0"
        default: return false
        }
        return true
    }

    /// `METHOD SP target SP HTTP/1.x`, each part checked in one pass.
    private static func requestLine(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into layout: inout HTTPHeadLayout) -> HTTPParseError? {
        var i = start
        while i < end && isTokenByte(p[i]) { i += 1 }
        guard i < end, p[i] == 0x20 else {
            return .init(status: 400, reason: i == end || p[i] == 0x20 ? "malformed request line" : (p[i] == 0x0D ? "bare CR in the request head" : "invalid method"))
        }
        guard i > start else { return .init(status: 400, reason: "malformed request line") }
        let method = start..<i
        i += 1
        let targetStart = i
        while i < end && p[i] > 0x20 && p[i] < 0x7F { i += 1 }
        guard i < end, p[i] == 0x20, i > targetStart else {
            return .init(status: 400, reason: i == end || i == targetStart ? "malformed request line" : "invalid request target")
        }
        let target = targetStart..<i
        i += 1
        let version = i..<end
        guard p[targetStart] == 0x2F || (target.count == 1 && p[targetStart] == 0x2A)
                || hasPrefixIgnoringCase(p, target, "http://") || hasPrefixIgnoringCase(p, target, "https://") else {
            return .init(status: 400, reason: "invalid request target")
        }
        let versionWord = version.count == 8 ? UnsafeRawPointer(p + version.lowerBound).loadUnaligned(as: UInt64.self) : 0
        if !setVersion(versionWord, into: &layout) {
            if version.count == 8 && hasPrefix(p, version, "HTTP/") && p[version.lowerBound + 5] >= 0x30 && p[version.lowerBound + 5] <= 0x39 {
                return .init(status: 505, reason: "HTTP version not supported")
            }
            return .init(status: 400, reason: "malformed HTTP version")
        }
        layout.method = method
        layout.target = target
        layout.isHEAD = method.count == 4 && UnsafeRawPointer(p + method.lowerBound).loadUnaligned(as: UInt32.self) == 0x4441_4548  // "HEAD"
        return nil
    }

    /// A `Content-Length` value: digits, or a list of identical digit strings (RFC 9110 §8.6).
    /// nil when malformed, -1 when the list's values differ.
    private static func contentLength(_ p: UnsafePointer<UInt8>, _ value: Range<Int>) -> Int? {
        var parsed: Int? = nil
        var conflicting = false
        var malformed = false
        forEachToken(p, value) { digits in
            guard !malformed else { return }
            guard !digits.isEmpty, digits.count <= 18 else { malformed = true; return }
            var v = 0
            for k in digits {
                guard p[k] >= 0x30 && p[k] <= 0x39 else { malformed = true; return }
                v = v * 10 + Int(p[k] - 0x30)
            }
            if let existing = parsed, existing != v { conflicting = true }
            parsed = v
        }
        if malformed { return nil }
        return conflicting ? -1 : parsed
    }

    /// Calls `body` with each comma-separated token of `value`, trimmed.
    private static func forEachToken(_ p: UnsafePointer<UInt8>, _ value: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = value.lowerBound
        while start <= value.upperBound {
            var end = start
            while end < value.upperBound && p[end] != 0x2C { end += 1 }
            body(trimmed(p, start..<end))
            start = end + 1
        }
    }

    /// `r` without leading and trailing spaces and tabs.
    @inline(__always)
    static func trimmed(_ p: UnsafePointer<UInt8>, _ r: Range<Int>) -> Range<Int> {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi && (p[lo] == 0x20 || p[lo] == 0x09) { lo += 1 }
        while hi > lo && (p[hi - 1] == 0x20 || p[hi - 1] == 0x09) { hi -= 1 }
        return lo..<hi
    }

    static func hasPrefix(_ p: UnsafePointer<UInt8>, _ r: Range<Int>, _ s: StaticString) -> Bool {
        r.count >= s.utf8CodeUnitCount && memcmp(p + r.lowerBound, s.utf8Start, s.utf8CodeUnitCount) == 0
    }

    /// `r` starts with the lowercase literal `s`, in any case (a URI scheme, RFC 3986 §3.1).
    static func hasPrefixIgnoringCase(_ p: UnsafePointer<UInt8>, _ r: Range<Int>, _ s: StaticString) -> Bool {
        r.count >= s.utf8CodeUnitCount && equalsIgnoringCase(p, r.lowerBound..<(r.lowerBound + s.utf8CodeUnitCount), s)
    }

    /// ASCII case-insensitive equality with a lowercase literal, a word at a time. Exact: each
    /// literal byte with bit 0x40 (its letters) also accepts its uppercase form, every other
    /// literal byte (`-`, digits, `:`, `/`) only itself, so no other byte can pass for one.
    @inline(__always)
    static func equalsIgnoringCase(_ p: UnsafePointer<UInt8>, _ r: Range<Int>, _ s: StaticString) -> Bool {
        let count = s.utf8CodeUnitCount
        guard r.count == count else { return false }
        let a = UnsafeRawPointer(p + r.lowerBound), b = UnsafeRawPointer(s.utf8Start)
        @inline(__always) func same64(_ at: Int) -> Bool {
            let e = b.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            return a.loadUnaligned(fromByteOffset: at, as: UInt64.self) | (e & 0x4040_4040_4040_4040) >> 1 == e
        }
        @inline(__always) func same32(_ at: Int) -> Bool {
            let e = b.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            return a.loadUnaligned(fromByteOffset: at, as: UInt32.self) | (e & 0x4040_4040) >> 1 == e
        }
        if count >= 8 {
            var i = 0
            while i + 8 < count {
                if !same64(i) { return false }
                i += 8
            }
            return same64(count - 8)  // the last word, overlapping the one before
        }
        if count >= 4 { return same32(0) && same32(count - 4) }
        for i in 0..<count {
            let e = b.load(fromByteOffset: i, as: UInt8.self)
            if a.load(fromByteOffset: i, as: UInt8.self) | (e & 0x40) >> 1 != e { return false }
        }
        return true
    }

    /// The interpreted header whose name starts the line at `start`, recognized in place with
    /// its colon (such names are tokens, so the byte-by-byte token check is not needed), or nil
    /// for any other name or one not wholly here yet.
    @inline(__always)
    static func knownField(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (kind: HeaderKind, colon: Int)? {
        @inline(__always) func named(_ s: StaticString, _ kind: HeaderKind) -> (kind: HeaderKind, colon: Int)? {
            let colon = start + s.utf8CodeUnitCount
            guard colon < end, p[colon] == 0x3A, equalsIgnoringCase(p, start..<colon, s) else { return nil }
            return (kind, colon)
        }
        switch p[start] | 0x20 {
        case 0x68: return named("host", .host)
        case 0x63: return named("content-length", .contentLength) ?? named("connection", .connection)
        case 0x74: return named("transfer-encoding", .transferEncoding)
        case 0x65: return named("expect", .expect)
        case 0x69: return named("if-modified-since", .ifModifiedSince)
        case 0x72: return named("range", .range)
        default: return nil
        }
    }

    enum HeaderKind { case host, contentLength, transferEncoding, connection, expect, ifModifiedSince, range, other }

    /// RFC 9110 token characters (a bit map in the C shim: no branches).
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool { gnet_http_is_token(b) != 0 }
}
