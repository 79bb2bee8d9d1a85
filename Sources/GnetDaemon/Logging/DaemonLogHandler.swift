import Gnet
import Logging

/// The supervisor's swift-log handler: every line through `LogLine`, with the journal's
/// priority when standard error is the journal. swift-log's levels map to syslog priorities as
/// critical 2, error 3, warning 4, notice 5, info 6, debug and trace 7.
struct DaemonLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        var all = metadata
        if let extra { all.merge(extra) { $1 } }
        let text = all.isEmpty ? message.description
            : message.description + " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        LogLine.write(Self.priority(level), text)
    }

    static func priority(_ level: Logger.Level) -> SyslogPriority {
        switch level {
        case .critical: .critical
        case .error: .error
        case .warning: .warning
        case .notice: .notice
        case .info: .info
        case .debug, .trace: .debug
        }
    }
}

/// A worker's Gnet logger (the engine's and its services' lines): the same `LogLine` format as
/// the supervisor's.
struct DaemonGnetLogger: GnetLogger {
    let level: LogLevel

    func log(_ level: LogLevel, _ message: String) {
        guard level >= self.level else { return }
        LogLine.write(Self.priority(level), message)
    }

    static func priority(_ level: LogLevel) -> SyslogPriority {
        switch level {
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }
}
