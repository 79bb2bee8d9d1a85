#if canImport(Glibc)
import Glibc
#endif

/// Limits on what a client may send before the server refuses it.
public struct HTTPLimits: Sendable {
    /// Longest request line (method, target, version) → 414 past it.
    public var maxRequestLine = 8 * 1024
    /// Longest header section, request line included → 431 past it.
    public var maxHead = 16 * 1024
    /// Most header fields → 431 past it.
    public var maxHeaders = 100
    public init() {}
}

/// Why a request head was refused, with the status to answer before closing.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let reason: String
    public var description: String { "\(status): \(reason)" }
}

/// The parts of a request head the server acts on. Parsing copies only the method, target and
/// the few header values it interprets; other headers are validated and skipped.
public struct HTTPRequestHead: Equatable, Sendable {
    public var method = ""
    public var target = ""
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion = 1
    public var host: String? = nil
    /// The declared body length; nil when none was declared.
    public var contentLength: Int? = nil
    public var chunked = false
    /// Whether the connection stays open after the response (version default, then `Connection`).
    public var keepAlive = true
    public var expectContinue = false
    public var ifModifiedSince: String? = nil
    public var range: String? = nil
    public var headerCount = 0
    public init() {}
}

/// Result of looking at the buffered bytes of a connection.
public enum HTTPHeadParseResult: Equatable, Sendable {
    /// The head is not complete yet (and within the limits so far).
    case incomplete
    /// A whole head of `length` bytes.
    case complete(HTTPRequestHead, length: Int)
    case failed(HTTPParseError)
}

/// An HTTP/1.x request-head parser that refuses, never guesses: obsolete line folding, space
/// before a colon, bare CR, conflicting or malformed lengths, `Content-Length` together with
/// `Transfer-Encoding`, and unknown transfer codings are errors (the smuggling defences of
/// RFC 9112 §6.3 and §11.2). Lines end in CRLF (a lone LF is accepted, as RFC 9112 §2.2 allows).
public enum HTTPHeadParser {
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: HTTPLimits = HTTPLimits()) -> HTTPHeadParseResult {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .incomplete }
        let n = bytes.count
        var head = HTTPRequestHead()
        var lineStart = 0
        var lineNumber = 0
        var sawConnection: String? = nil
        var transferEncoding: String? = nil
        while true {
            let searchEnd = min(n, limits.maxHead)
            guard lineStart < searchEnd, let nlPtr = memchr(base + lineStart, 0x0A, searchEnd - lineStart) else {
                if lineNumber == 0 && n > limits.maxRequestLine { return .failed(.init(status: 414, reason: "request line too long")) }
                if n >= limits.maxHead { return .failed(.init(status: 431, reason: "request head too large")) }
                return .incomplete
            }
            let nl = UnsafeRawPointer(nlPtr) - base
            var lineEnd = nl
            if lineEnd > lineStart && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])
            if line.contains(0x0D) { return .failed(.init(status: 400, reason: "bare CR in the request head")) }
            if lineNumber == 0 {
                if line.isEmpty && lineStart == 0 {
                    // RFC 9112 §2.2: ignore at least one empty line before the request line.
                    lineStart = nl + 1
                    if lineStart > 4 { return .failed(.init(status: 400, reason: "empty lines before the request")) }
                    continue
                }
                if line.count > limits.maxRequestLine { return .failed(.init(status: 414, reason: "request line too long")) }
                if let e = parseRequestLine(line, into: &head) { return .failed(e) }
            } else if line.isEmpty {
                // End of the head: settle the body framing.
                if let te = transferEncoding {
                    if head.contentLength != nil { return .failed(.init(status: 400, reason: "both Content-Length and Transfer-Encoding")) }
                    guard te == "chunked" else { return .failed(.init(status: 501, reason: "unsupported transfer coding \"\(te)\"")) }
                    head.chunked = true
                }
                if head.minorVersion == 1 && head.host == nil { return .failed(.init(status: 400, reason: "HTTP/1.1 request without Host")) }
                if let c = sawConnection {
                    let tokens = c.split(separator: ",").map { $0.trimmingCharacters() }
                    if tokens.contains("close") { head.keepAlive = false } else if tokens.contains("keep-alive") { head.keepAlive = true }
                }
                return .complete(head, length: nl + 1)
            } else {
                head.headerCount += 1
                if head.headerCount > limits.maxHeaders { return .failed(.init(status: 431, reason: "too many header fields")) }
                if line[0] == 0x20 || line[0] == 0x09 { return .failed(.init(status: 400, reason: "obsolete line folding")) }
                guard let colon = line.firstIndex(of: 0x3A), colon > 0 else { return .failed(.init(status: 400, reason: "header field without a name")) }
                let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
                guard name.allSatisfy(isTokenByte) else { return .failed(.init(status: 400, reason: "invalid header field name")) }
                let value = trimmed(UnsafeRawBufferPointer(rebasing: line[(colon + 1)...]))
                if value.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }) {
                    return .failed(.init(status: 400, reason: "control character in a header value"))
                }
                switch headerKind(name) {
                case .host:
                    if head.host != nil { return .failed(.init(status: 400, reason: "more than one Host")) }
                    head.host = String(decoding: value, as: UTF8.self)
                case .contentLength:
                    // A list of identical values is tolerated (RFC 9110 §8.6); anything else is refused.
                    var parsed: Int? = nil
                    var partStart = 0
                    while partStart <= value.count {
                        let partEnd = value[partStart...].firstIndex(of: 0x2C) ?? value.count
                        let digits = trimmed(UnsafeRawBufferPointer(rebasing: value[partStart..<partEnd]))
                        partStart = partEnd + 1
                        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                            return .failed(.init(status: 400, reason: "invalid Content-Length"))
                        }
                        let v = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                        if let p = parsed, p != v { return .failed(.init(status: 400, reason: "conflicting Content-Length values")) }
                        parsed = v
                    }
                    if let existing = head.contentLength, existing != parsed { return .failed(.init(status: 400, reason: "conflicting Content-Length headers")) }
                    head.contentLength = parsed
                case .transferEncoding:
                    let v = String(decoding: value, as: UTF8.self).lowercased()
                    transferEncoding = transferEncoding.map { $0 + ", " + v } ?? v
                case .connection:
                    let v = String(decoding: value, as: UTF8.self).lowercased()
                    sawConnection = sawConnection.map { $0 + "," + v } ?? v
                case .expect:
                    if String(decoding: value, as: UTF8.self).lowercased() == "100-continue" { head.expectContinue = true }
                case .ifModifiedSince:
                    head.ifModifiedSince = String(decoding: value, as: UTF8.self)
                case .range:
                    head.range = String(decoding: value, as: UTF8.self)
                case .other:
                    break
                }
            }
            lineNumber += 1
            lineStart = nl + 1
        }
    }

    private static func parseRequestLine(_ line: UnsafeRawBufferPointer, into head: inout HTTPRequestHead) -> HTTPParseError? {
        guard let sp1 = line.firstIndex(of: 0x20) else { return .init(status: 400, reason: "malformed request line") }
        let rest = UnsafeRawBufferPointer(rebasing: line[(sp1 + 1)...])
        guard let sp2r = rest.firstIndex(of: 0x20) else { return .init(status: 400, reason: "malformed request line") }
        let method = UnsafeRawBufferPointer(rebasing: line[0..<sp1])
        let target = UnsafeRawBufferPointer(rebasing: rest[0..<sp2r])
        let version = UnsafeRawBufferPointer(rebasing: rest[(sp2r + 1)...])
        guard !method.isEmpty, !target.isEmpty, !version.contains(0x20) else { return .init(status: 400, reason: "malformed request line") }
        guard method.allSatisfy(isTokenByte) else { return .init(status: 400, reason: "invalid method") }
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .init(status: 400, reason: "invalid request target") }
        guard target[0] == 0x2F || (target.count == 1 && target[0] == 0x2A) || hasPrefix(target, "http://") || hasPrefix(target, "https://") else {
            return .init(status: 400, reason: "invalid request target")
        }
        if equals(version, "HTTP/1.1") {
            head.minorVersion = 1; head.keepAlive = true
        } else if equals(version, "HTTP/1.0") {
            head.minorVersion = 0; head.keepAlive = false
        } else if hasPrefix(version, "HTTP/") && version.count == 8 && version[5] >= 0x30 && version[5] <= 0x39 {
            return .init(status: 505, reason: "HTTP version not supported")
        } else {
            return .init(status: 400, reason: "malformed HTTP version")
        }
        head.method = String(decoding: method, as: UTF8.self)   // short strings stay inline: no allocation
        head.target = String(decoding: target, as: UTF8.self)
        return nil
    }

    static func equals(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        b.count == s.utf8CodeUnitCount && memcmp(b.baseAddress!, s.utf8Start, b.count) == 0
    }

    static func hasPrefix(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        b.count >= s.utf8CodeUnitCount && memcmp(b.baseAddress!, s.utf8Start, s.utf8CodeUnitCount) == 0
    }

    enum HeaderKind { case host, contentLength, transferEncoding, connection, expect, ifModifiedSince, range, other }

    /// Which interpreted header `name` is, compared case-insensitively without allocating.
    static func headerKind(_ name: UnsafeRawBufferPointer) -> HeaderKind {
        func same(_ s: StaticString) -> Bool {
            guard name.count == s.utf8CodeUnitCount else { return false }
            for i in 0..<name.count where name[i] | 0x20 != s.utf8Start[i] | 0x20 { return false }
            return true
        }
        switch name.count {
        case 4: return same("host") ? .host : .other
        case 5: return same("range") ? .range : .other
        case 6: return same("expect") ? .expect : .other
        case 10: return same("connection") ? .connection : .other
        case 14: return same("content-length") ? .contentLength : .other
        case 17: return same("transfer-encoding") ? .transferEncoding : (same("if-modified-since") ? .ifModifiedSince : .other)
        default: return .other
        }
    }

    /// RFC 9110 token characters.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    static func trimmed(_ b: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var lo = 0, hi = b.count
        while lo < hi && (b[lo] == 0x20 || b[lo] == 0x09) { lo += 1 }
        while hi > lo && (b[hi - 1] == 0x20 || b[hi - 1] == 0x09) { hi -= 1 }
        return UnsafeRawBufferPointer(rebasing: b[lo..<hi])
    }

    static func lowercased(_ b: UnsafeRawBufferPointer) -> String {
        String(decoding: b.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
