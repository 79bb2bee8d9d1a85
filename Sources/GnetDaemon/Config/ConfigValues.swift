/// A duration written `250ms`, `30s`, `5m`, `1h` (or a bare number of seconds).
public struct ConfigDuration: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Whole milliseconds.
    public let milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> ConfigDuration { ConfigDuration(milliseconds: s * 1000) }

    /// Parses the text form; nil when it is not one.
    public init?(parsing text: String) {
        let t = text.trimmingSpaces
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count)
            if suffix == "s" && number.hasSuffix("m") { continue }  // "ms" handled above
            guard let v = Int64(number), v >= 0, v <= Int64.max / factor else { return nil }
            milliseconds = v * factor
            return
        }
        guard let v = Int64(t), v >= 0, v <= Int64.max / 1000 else { return nil }
        milliseconds = v * 1000
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int64.self), n >= 0, n <= Int64.max / 1000 { milliseconds = n * 1000; return }
        let s = try c.decode(String.self)
        guard let d = ConfigDuration(parsing: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "invalid duration \"\(s)\" (write e.g. 250ms, 30s, 5m, 1h)")
        }
        self = d
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var description: String {
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    /// As a Swift `Duration`.
    public var duration: Duration { .milliseconds(milliseconds) }
}

/// A byte size written `64KiB`, `16MiB`, `1GiB` (or a bare number of bytes).
public struct ConfigSize: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public let bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    public init?(parsing text: String) {
        let t = text.trimmingSpaces
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let v = Int(t.dropLast(suffix.count)), v >= 0, v <= (1 << 40) / factor else { return nil }
            bytes = v * factor
            return
        }
        guard let v = Int(t), v >= 0, v <= 1 << 40 else { return nil }
        bytes = v
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self), n >= 0, n <= 1 << 40 { bytes = n; return }
        let s = try c.decode(String.self)
        guard let v = ConfigSize(parsing: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "invalid size \"\(s)\" (write e.g. 64KiB, 16MiB, or a number of bytes)")
        }
        self = v
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var description: String {
        if bytes > 0 && bytes % (1 << 30) == 0 { return "\(bytes >> 30)GiB" }
        if bytes > 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
        if bytes > 0 && bytes % (1 << 10) == 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)"
    }
}

/// `auto` (one worker per online CPU) or a number from 1 to 1024.
public enum WorkerCount: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    case auto
    case fixed(Int)

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) {
            guard (1...1024).contains(n) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "workers must be auto or 1 to 1024, not \(n)")
            }
            self = .fixed(n)
            return
        }
        let s = try c.decode(String.self)
        guard s == "auto" else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "workers must be auto or 1 to 1024, not \"\(s)\"") }
        self = .auto
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .auto: try c.encode("auto")
        case .fixed(let n): try c.encode(n)
        }
    }

    public var description: String {
        switch self { case .auto: "auto"; case .fixed(let n): "\(n)" }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
