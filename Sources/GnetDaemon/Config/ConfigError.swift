/// A configuration that cannot be used, located as precisely as the YAML allows:
/// `gnetd.yaml:12:7: services[1].listen[0]: invalid address "tcp://"`.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file (or `<built-in>`, `<inline>`).
    public let file: String
    /// 1-based line and column of the offending node, when known.
    public let line: Int?
    public let column: Int?
    /// The key path, e.g. `services[1].listen[0]`; empty for the whole document.
    public let path: String
    public let message: String

    public init(file: String, line: Int?, column: Int?, path: String, message: String) {
        self.file = file; self.line = line; self.column = column; self.path = path; self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let column { s += ":\(column)" }
        s += ": "
        if !path.isEmpty { s += "\(path): " }
        return s + message
    }
}
