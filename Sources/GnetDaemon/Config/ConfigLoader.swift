#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetProcess

/// One step of a key path into the document.
enum PathStep: CustomStringConvertible {
    case key(String)
    case index(Int)
    var description: String {
        switch self { case .key(let k): ".\(k)"; case .index(let i): "[\(i)]" }
    }
}

/// Reads, checks and decodes a daemon's YAML configuration.
///
/// Order of checks: YAML syntax and shape (libyaml's line and column; `YAMLComposer` refuses
/// aliases, keys given twice and nesting deeper than 64 levels), then types (Codable, through
/// `ConfigDecoder`: the daemon's keys and each service's, its kind's settings included), then
/// unknown keys (every key no type asked for is an error, so a typo never falls back to a
/// default), then meaning (ranges, addresses, duplicates, users, each service's own
/// `validate()`). The first problem found is reported with file, line, column and key path.
public enum ConfigLoader {
    /// Keys of things planned but not built: refused as "not supported yet", not as unknown.
    static let notYet: Set<String> = ["tls", "upstreams", "balance", "health", "connect_timeout"]
    /// Service kinds planned but not built.
    static let notYetKinds: Set<String> = ["proxy"]

    /// Loads `path` (a regular file of at most 4 MiB) with the daemon's service `kinds`.
    public static func load(path: String, kinds: [ServiceKind] = Daemon.builtInServices,
                            defaultControlSocket: String = DaemonIdentity.gnetd.controlSocket) throws(ConfigError) -> DaemonConfig {
        let bytes: [UInt8]
        do {
            bytes = try ProcFS.readBytes(path, limit: 4 << 20)
        } catch {
            let reason = error.errno == EFBIG ? "larger than 4 MiB"
                : error.errno == EINVAL && error.call.description == "fstat" ? "not a regular file"
                : "cannot \(error.call): \(error.message)"
            throw ConfigError(file: path, line: nil, column: nil, path: "", message: reason)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, line: nil, column: nil, path: "", message: "not UTF-8 text")
        }
        return try parse(text, file: path, kinds: kinds, defaultControlSocket: defaultControlSocket)
    }

    /// The `control.socket` a daemon's configuration file names, read without decoding its
    /// services (gnetctl does not know every daemon's service kinds).
    public static func controlSocket(inFile path: String) throws(ConfigError) -> String {
        let bytes: [UInt8]
        do { bytes = try ProcFS.readBytes(path, limit: 4 << 20) } catch {
            throw ConfigError(file: path, line: nil, column: nil, path: "", message: "cannot \(error.call): \(error.message)")
        }
        let node: YAMLNode?
        do { node = try YAMLComposer.compose(String(decoding: bytes, as: UTF8.self)) } catch {
            throw configError(error, file: path)
        }
        guard case .mapping(let top)? = node?.content, case .mapping(let control)? = top["control"]?.content,
              let socket = control["socket"]?.scalarText else {
            throw ConfigError(file: path, line: nil, column: nil, path: "control.socket",
                              message: "not set: the daemon uses its own default; name the socket with -s")
        }
        return socket
    }

    /// Parses configuration text; `file` names it in errors.
    public static func parse(_ text: String, file: String = "<inline>", kinds: [ServiceKind] = Daemon.builtInServices,
                             defaultControlSocket: String = DaemonIdentity.gnetd.controlSocket) throws(ConfigError) -> DaemonConfig {
        let composed: YAMLNode?
        do { composed = try YAMLComposer.compose(text) } catch { throw configError(error, file: file) }
        guard let root = composed else {
            throw ConfigError(file: file, line: nil, column: nil, path: "", message: "empty configuration: at least one service is needed")
        }
        let fail = { (path: [PathStep], message: String) -> ConfigError in
            let mark = locate(root, path)
            return ConfigError(file: file, line: mark?.line, column: mark?.column, path: render(path), message: message)
        }
        guard case .mapping = root.content else { throw fail([], "the configuration must be a mapping of keys") }
        var decoder = ConfigDecoder()
        decoder.userInfo[.serviceKinds] = kinds
        decoder.userInfo[.defaultControlSocket] = defaultControlSocket
        let config: DaemonConfig
        do {
            config = try decoder.decode(DaemonConfig.self, from: root)
        } catch let e as DecodingError {
            let (path, message) = describe(e)
            throw fail(path, message)
        } catch {
            throw fail([], "\(error)")
        }
        if let unknown = decoder.firstUnknownKey() {
            let path = unknown.path.map { k in k.intValue.map { PathStep.index($0) } ?? .key(k.stringValue) } + [.key(unknown.key)]
            let message = notYet.contains(unknown.key) ? "\"\(unknown.key)\" is not supported yet"
                : "unknown key \"\(unknown.key)\" (allowed here: \(unknown.allowed.joined(separator: ", ")))"
            throw ConfigError(file: file, line: unknown.mark?.line, column: unknown.mark?.column, path: render(path), message: message)
        }
        try validate(config, kinds: kinds, fail: fail)
        var result = config
        result.sourceFile = file
        result.sourceText = text
        return result
    }

    // MARK: meaning

    private static func validate(_ c: DaemonConfig, kinds: [ServiceKind], fail: ([PathStep], String) -> ConfigError) throws(ConfigError) {
        /// A numeric value outside its range (ConfigRanges) is refused where it stands.
        func check(_ r: NumericRange, _ value: Int64?, _ path: [PathStep]) throws(ConfigError) {
            guard let value, !r.contains(value) else { return }
            throw fail(path, "must be \(r), not \(NumericRange.render(value, r.unit))")
        }
        func check(_ r: NumericRange, _ value: Int?, _ path: [PathStep]) throws(ConfigError) {
            try check(r, value.map { Int64($0) }, path)
        }
        try check(ConfigRanges.drainTimeout, c.drainTimeout.milliseconds, [.key("drain_timeout")])
        try check(ConfigRanges.drainIdleGrace, c.drainIdleGrace.milliseconds, [.key("drain_idle_grace")])
        guard c.drainIdleGrace.milliseconds <= c.drainTimeout.milliseconds else {
            throw fail([.key("drain_idle_grace")], "must be at most drain_timeout (\(c.drainTimeout.milliseconds)ms)")
        }
        try check(ConfigRanges.workerStallTimeout, c.workerStallTimeout.milliseconds, [.key("worker_stall_timeout")])
        try check(ConfigRanges.controlIdleTimeout, c.control.idleTimeout.milliseconds, [.key("control"), .key("idle_timeout")])
        guard LogLevel.allCases.contains(where: { $0.name == c.logLevel }) else {
            throw fail([.key("log_level")], "must be one of debug, info, warning, error")
        }
        guard c.control.permissionBits != nil else { throw fail([.key("control"), .key("mode")], "must be octal permission bits such as \"0660\"") }
        guard c.control.socket.hasPrefix("/"), SocketAddress.unix(c.control.socket) != nil else {
            throw fail([.key("control"), .key("socket")], "must be an absolute path of at most 107 bytes")
        }
        if let user = c.user {
            guard !user.isEmpty, getpwnam(user) != nil else { throw fail([.key("user")], "no such user \"\(user)\"") }
        }
        guard !c.services.isEmpty else { throw fail([.key("services")], "at least one service is needed") }
        let layout = SlotLayout(c, kinds: kinds)
        guard layout.fits else {
            throw fail([.key("services")], "the services publish \(layout.width) counters; a worker holds at most \(SlotLayout.capacity)")
        }
        var names: Set<String> = []
        var addresses: [NetworkAddress: String] = [:]
        for (i, s) in c.services.enumerated() {
            let at: [PathStep] = [.key("services"), .index(i)]
            try check(ConfigRanges.readBufferCap, s.readBufferCap?.bytes, at + [.key("read_buffer_cap")])
            try check(ConfigRanges.writeBufferCap, s.writeBufferCap?.bytes, at + [.key("write_buffer_cap")])
            try check(ConfigRanges.idleTimeout, s.idleTimeout?.milliseconds, at + [.key("idle_timeout")])
            try check(ConfigRanges.maxConnections, s.maxConnections, at + [.key("max_connections")])
            guard !s.name.isEmpty, s.name.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == 0x2D || $0 == 0x5F }), s.name.utf8.count <= 64 else {
                throw fail(at + [.key("name")], "a name is 1–64 letters, digits, '-' or '_'")
            }
            guard names.insert(s.name).inserted else { throw fail(at + [.key("name")], "service name \"\(s.name)\" is used twice") }
            guard !s.listen.isEmpty else { throw fail(at + [.key("listen")], "a service needs at least one listen address") }
            for (j, text) in s.listen.enumerated() {
                let addressPath = at + [.key("listen"), .index(j)]
                let address: NetworkAddress
                do { address = try NetworkAddress(parsing: text) } catch { throw fail(addressPath, "\(error)") }
                if address.network.isDatagram && kinds.first(where: { $0.name == s.kind })?.acceptsDatagrams != true {
                    throw fail(addressPath, "protocol \(s.kind) needs a stream address (tcp or unix)")
                }
                if address.network == .unix && !address.path.hasPrefix("/") { throw fail(addressPath, "a unix socket path must be absolute") }
                if address.network == .unix && address.path == c.control.socket { throw fail(addressPath, "\(text) is the control socket") }
                if address.network == .unix || address.port != 0 {  // port 0 always gets a port of its own
                    if let other = addresses[address] { throw fail(addressPath, "\(text) is already used by service \"\(other)\"") }
                    addresses[address] = s.name
                }
            }
            do {
                try s.settings.validate()
            } catch {
                throw fail(at + error.key.map { k in Int(k).map { PathStep.index($0) } ?? .key(k) }, error.reason)
            }
        }
    }

    // MARK: locating

    static func render(_ path: [PathStep]) -> String {
        var s = path.map(\.description).joined()
        if s.hasPrefix(".") { s.removeFirst() }
        return s
    }

    /// The mark of the deepest node along `path` that exists.
    static func locate(_ root: YAMLNode, _ path: [PathStep]) -> YAMLMark? {
        var node = root
        for step in path {
            switch (step, node.content) {
            case (.key(let k), .mapping(let m)):
                if let value = m[k] { node = value } else { return node.mark }
            case (.index(let i), .sequence(let s)) where i < s.count:
                node = s[i]
            default:
                return node.mark
            }
        }
        return node.mark
    }

    private static func describe(_ e: DecodingError) -> ([PathStep], String) {
        func steps(_ path: [CodingKey]) -> [PathStep] {
            path.map { k in k.intValue.map { .index($0) } ?? .key(k.stringValue) }
        }
        switch e {
        case .typeMismatch(let type, let ctx):
            return (steps(ctx.codingPath), "expected \(typeName(type))")
        case .valueNotFound(let type, let ctx):
            return (steps(ctx.codingPath), "a value (\(typeName(type))) is needed")
        case .keyNotFound(let key, let ctx):
            return (steps(ctx.codingPath), "missing key \"\(key.stringValue)\"")
        case .dataCorrupted(let ctx):
            return (steps(ctx.codingPath), ctx.debugDescription)
        @unknown default:
            return ([], "\(e)")
        }
    }

    private static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Bool.Type: return "true or false"
        case is [String].Type, is [ServiceConfig].Type: return "a list"
        default: return "\(t)"
        }
    }

    private static func configError(_ e: YAMLError, file: String) -> ConfigError {
        ConfigError(file: file, line: e.mark?.line, column: e.mark?.column, path: render(e.path), message: e.message)
    }
}

func onlineCPUs() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
