/// The allowed range of every numeric configuration key. The loader refuses a value outside
/// its range with the file, line, column and key; gnetd.yaml(5) lists the same ranges. With
/// every value bounded, nothing the daemon computes from a configuration can overflow, and what
/// `gnetd --check` accepts starts and serves.
public struct NumericRange: Sendable, CustomStringConvertible {
    /// How a key's values are written.
    public enum Unit: Sendable {
        /// `250ms`, `30s`, `5m`, `1h`, or a bare number of seconds; checked in milliseconds.
        case duration
        /// `64KiB`, `16MiB`, `1GiB`, or a bare number of bytes.
        case size
        /// A plain whole number.
        case count
    }

    /// The key as gnetd.yaml(5) names it, e.g. `services[].codec.length_adjustment`.
    public let key: String
    public let unit: Unit
    /// The bounds, in milliseconds for durations and bytes for sizes.
    public let range: ClosedRange<Int64>
    /// Values besides the range that mean something (`0` = off).
    public let alsoAllowed: [Int64]

    init(_ key: String, _ unit: Unit, _ range: ClosedRange<Int64>, alsoAllowed: [Int64] = []) {
        self.key = key; self.unit = unit; self.range = range; self.alsoAllowed = alsoAllowed
    }

    public func contains(_ value: Int64) -> Bool { range.contains(value) || alsoAllowed.contains(value) }

    /// Refuses a value outside the range as a setting at `key`.
    public func check(_ value: Int64?, _ key: [String]) throws(SettingsError) {
        guard let value, !contains(value) else { return }
        throw SettingsError(key, "must be \(self), not \(Self.render(value, unit))")
    }

    public func check(_ value: Int?, _ key: [String]) throws(SettingsError) {
        try check(value.map { Int64($0) }, key)
    }

    /// How the range reads in an error message: "100ms to 24h", "0 (off) or 500ms to 1h".
    public var description: String {
        let span = "\(Self.render(range.lowerBound, unit)) to \(Self.render(range.upperBound, unit))"
        return alsoAllowed.isEmpty ? span : alsoAllowed.map { Self.render($0, unit) }.joined(separator: ", ") + " (off) or " + span
    }

    static func render(_ v: Int64, _ unit: Unit) -> String {
        switch unit {
        case .duration: return ConfigDuration(milliseconds: v).description
        case .size: return v < 0 ? "\(v)" : ConfigSize(bytes: Int(v)).description
        case .count: return "\(v)"
        }
    }
}

/// The ranges themselves.
public enum ConfigRanges {
    static let hour: Int64 = 3_600_000, day: Int64 = 86_400_000
    static let kib: Int64 = 1 << 10, mib: Int64 = 1 << 20, gib: Int64 = 1 << 30, tib: Int64 = 1 << 40

    public static let workers = NumericRange("workers", .count, 1...1024)
    public static let drainTimeout = NumericRange("drain_timeout", .duration, 0...day)
    public static let drainIdleGrace = NumericRange("drain_idle_grace", .duration, 0...30_000)  // and at most drain_timeout
    public static let workerStallTimeout = NumericRange("worker_stall_timeout", .duration, 1000...hour, alsoAllowed: [0])
    public static let controlIdleTimeout = NumericRange("control.idle_timeout", .duration, 100...day)
    public static let readBufferCap = NumericRange("services[].read_buffer_cap", .size, kib...(64 * mib))
    public static let writeBufferCap = NumericRange("services[].write_buffer_cap", .size, kib...gib)
    public static let idleTimeout = NumericRange("services[].idle_timeout", .duration, 100...day)
    public static let maxConnections = NumericRange("services[].max_connections", .count, 0...10_000_000)
    public static let interval = NumericRange("services[].interval", .duration, 1...day)
    public static let headerTimeout = NumericRange("services[].header_timeout", .duration, 100...day)
    public static let keepaliveTimeout = NumericRange("services[].keepalive_timeout", .duration, 100...day)
    public static let sendTimeout = NumericRange("services[].send_timeout", .duration, 100...day)
    public static let fileCacheValid = NumericRange("services[].file_cache_valid", .duration, 0...hour)
    public static let maxBodySize = NumericRange("services[].max_body_size", .size, 0...tib)
    public static let status = NumericRange("services[].routes[].status", .count, 200...599)
    public static let delimiter = NumericRange("services[].codec.delimiter", .count, 0...255)
    public static let frameLength = NumericRange("services[].codec.frame_length", .count, 1...gib)
    public static let lengthFieldOffset = NumericRange("services[].codec.length_field_offset", .count, 0...65_535)
    public static let lengthFieldLength = NumericRange("services[].codec.length_field_length", .count, 1...8)
    public static let lengthAdjustment = NumericRange("services[].codec.length_adjustment", .count, -gib...gib)
    public static let initialBytesToStrip = NumericRange("services[].codec.initial_bytes_to_strip", .count, 0...gib)  // and at most max_frame_length
    public static let maxFrameLength = NumericRange("services[].codec.max_frame_length", .size, 1...gib)

    /// Every numeric key.
    public static let all: [NumericRange] = [
        workers, drainTimeout, drainIdleGrace, workerStallTimeout, controlIdleTimeout, readBufferCap, writeBufferCap, idleTimeout,
        maxConnections, interval, headerTimeout, keepaliveTimeout, sendTimeout, fileCacheValid, maxBodySize, status, delimiter,
        frameLength, lengthFieldOffset, lengthFieldLength, lengthAdjustment, initialBytesToStrip, maxFrameLength,
    ]
}
