/// Why some bytes are not one JSON value: what was wrong and at which byte offset.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The 0-based byte offset of the problem.
    public let offset: Int
    /// What was expected or found there.
    public let message: String

    /// A problem at `offset`.
    public init(offset: Int, _ message: String) {
        self.offset = offset
        self.message = message
    }

    /// "message at byte N".
    public var description: String { "\(message) at byte \(offset)" }
}

/// A strict RFC 8259 parser for the control protocol: exactly one value, surrounded by nothing
/// but JSON whitespace; strings of valid UTF-8 with no raw control characters, every escape
/// checked (`\uXXXX` surrogates must come in pairs); numbers in JSON's own grammar (no `+`,
/// leading zeros, `.5` or `NaN`), finite. Nesting deeper than `maxDepth` is refused before it
/// costs stack. The caller bounds the input's size.
public struct JSONParser {
    /// Arrays and objects nested deeper than this are refused.
    public static let defaultMaxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var position = 0

    private init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// Parses `bytes` as one JSON value.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected bytes after the value") }
        return value
    }

    /// Parses `bytes` as one JSON value.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBytes { b in Result { () throws(JSONParseError) in try parse(b, maxDepth: maxDepth) } }.get()
    }

    /// Parses `text` as one JSON value.
    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    // MARK: values

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? position, message)
    }

    private mutating func skipWhitespace() {
        while let b = current, b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\t") {
            position += 1
        }
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let b = current else { throw error("expected a value, found the end") }
        switch b {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("expected a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let start = position
        for expected in UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard current == expected else { throw error("expected \(word)", at: start) }
            position += 1
        }
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
        position += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
            let keyAt = position
            let key = try string()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
            position += 1
            skipWhitespace()
            guard members.updateValue(try value(depth: depth), forKey: key) == nil else {
                throw error("member \"\(key.prefix(64))\" given twice", at: keyAt)
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return .object(members)
            default: throw error("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
        position += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(elements)
            default: throw error("expected ',' or ']' in an array")
            }
        }
    }

    // MARK: numbers

    /// Where a number's scan is: JSON's number grammar, one state per part.
    private enum NumberState {
        case sign, firstDigit, integerDigits, afterInteger, fractionFirst, fractionDigits, exponentSign, exponentFirst, exponentDigits, done
    }

    private mutating func number() throws(JSONParseError) -> JSONValue {
        let start = position
        var state = NumberState.sign
        var whole = true
        func isDigit(_ b: UInt8?) -> Bool { b.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }
        while state != .done {
            let b = current
            switch state {
            case .sign:
                if b == UInt8(ascii: "-") { position += 1 }
                state = .firstDigit
            case .firstDigit:
                guard isDigit(b) else { throw error("expected a digit") }
                position += 1
                if b == UInt8(ascii: "0") {
                    if isDigit(current) { throw error("a number has no leading zeros", at: start) }
                    state = .afterInteger
                } else {
                    state = .integerDigits
                }
            case .integerDigits:
                if isDigit(b) { position += 1 } else { state = .afterInteger }
            case .afterInteger:
                if b == UInt8(ascii: ".") {
                    position += 1
                    whole = false
                    state = .fractionFirst
                } else if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                    position += 1
                    whole = false
                    state = .exponentSign
                } else {
                    state = .done
                }
            case .fractionFirst:
                guard isDigit(b) else { throw error("expected a digit after '.'") }
                position += 1
                state = .fractionDigits
            case .fractionDigits:
                if isDigit(b) {
                    position += 1
                } else if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                    position += 1
                    state = .exponentSign
                } else {
                    state = .done
                }
            case .exponentSign:
                if b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { position += 1 }
                state = .exponentFirst
            case .exponentFirst:
                guard isDigit(b) else { throw error("expected a digit in the exponent") }
                position += 1
                state = .exponentDigits
            case .exponentDigits:
                if isDigit(b) { position += 1 } else { state = .done }
            case .done:
                break
            }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if whole {
            if let v = Int64(text) { return .int(v) }
            if let v = UInt64(text) { return .uint(v) }
        }
        guard let v = Double(text), v.isFinite else { throw error("number out of range", at: start) }
        return .double(v)
    }

    // MARK: strings

    private mutating func string() throws(JSONParseError) -> String {
        let start = position
        position += 1  // "
        var out: [UInt8] = []
        while true {
            guard let b = current else { throw error("unterminated string", at: start) }
            switch b {
            case UInt8(ascii: "\""):
                position += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw error("a string that is not UTF-8", at: start) }
                return s
            case UInt8(ascii: "\\"):
                position += 1
                try escape(into: &out)
            case 0..<0x20:
                throw error("a control character in a string must be escaped")
            default:
                out.append(b)
                position += 1
            }
        }
    }

    /// After a backslash: one escape, appended to `out` as UTF-8.
    private mutating func escape(into out: inout [UInt8]) throws(JSONParseError) {
        let at = position - 1
        guard let b = current else { throw error("unterminated string") }
        position += 1
        let simple: UInt8
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): simple = b
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = UInt8(ascii: "\n")
        case UInt8(ascii: "r"): simple = UInt8(ascii: "\r")
        case UInt8(ascii: "t"): simple = UInt8(ascii: "\t")
        case UInt8(ascii: "u"):
            var scalar = UInt32(try hex4())
            if (0xD800...0xDBFF).contains(scalar) {
                guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("a high surrogate without its low surrogate", at: at)
                }
                position += 2
                let low = UInt32(try hex4())
                guard (0xDC00...0xDFFF).contains(low) else { throw error("a high surrogate without its low surrogate", at: at) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("a low surrogate without its high surrogate", at: at)
            }
            guard let u = Unicode.Scalar(scalar) else { throw error("not a Unicode scalar", at: at) }
            out += String(Character(u)).utf8
            return
        default:
            throw error("unknown escape", at: at)
        }
        out.append(simple)
    }

    private mutating func hex4() throws(JSONParseError) -> UInt16 {
        var v: UInt16 = 0
        for _ in 0..<4 {
            guard let b = current else { throw error("expected four hex digits after \\u") }
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw error("expected four hex digits after \\u")
            }
            v = v << 4 | UInt16(digit)
            position += 1
        }
        return v
    }
}
