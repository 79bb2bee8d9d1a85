#if canImport(Glibc)
import Glibc
#endif

/// Severity of a log line.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warning, error

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    /// Lower-case name, as written in log lines and config files.
    public var name: String {
        switch self { case .debug: "debug"; case .info: "info"; case .warning: "warning"; case .error: "error" }
    }
}

/// Where Gnet writes what cannot be returned as an error. Called from loop threads: an
/// implementation must be thread-safe and must not block for long.
public protocol GnetLogger: Sendable {
    /// Lines below this level are not built at all.
    var level: LogLevel { get }
    /// Writes one line.
    func log(_ level: LogLevel, _ message: String)
}

extension GnetLogger {
    @inline(__always)
    func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        if level >= self.level { log(level, message()) }
    }
}

/// Writes `gnet[pid]: level: message` lines to standard error with one `write(2)` each.
public struct StandardErrorLogger: GnetLogger {
    public let level: LogLevel

    /// Creates a logger that drops lines below `level`.
    public init(level: LogLevel) { self.level = level }

    public func log(_ level: LogLevel, _ message: String) {
        guard level >= self.level else { return }
        var line = "gnet[\(getpid())]: \(level.name): \(message)\n"
        line.withUTF8 { b in _ = Glibc.write(2, b.baseAddress, b.count) }
    }
}
