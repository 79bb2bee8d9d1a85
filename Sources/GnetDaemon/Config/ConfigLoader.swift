#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gnet
import GnetProcess
import Yams

/// One step of a key path into the document.
enum PathStep: CustomStringConvertible {
    case key(String)
    case index(Int)
    var description: String {
        switch self { case .key(let k): ".\(k)"; case .index(let i): "[\(i)]" }
    }
}

/// Reads, checks and decodes gnetd's YAML configuration.
///
/// Order of checks: YAML syntax (libyaml's line and column), then every key against what its
/// mapping allows (an unknown key is an error, so a typo never falls back to a default), then
/// types (Codable), then meaning (addresses, duplicates, codec parameters, users…). The first
/// problem found is reported with file, line, column and key path.
public enum ConfigLoader {
    /// The keys a service of each protocol may have beyond the common ones.
    static let commonServiceKeys: Set<String> = ["name", "protocol", "listen", "read_buffer_cap", "write_buffer_cap", "idle_timeout", "max_connections"]
    static let protocolKeys: [ServiceProtocol: Set<String>] = [
        .echo: ["write"], .push: ["interval", "message"], .framed: ["codec"],
        .http: ["routes", "header_timeout", "keepalive_timeout", "send_timeout", "file_cache_valid", "max_body_size", "access_log"], .proxy: [],
    ]
    static let notYet: Set<String> = ["tls", "upstreams", "balance", "health", "connect_timeout"]

    /// Loads `path`.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
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
        return try parse(text, file: path)
    }

    /// Parses configuration text; `file` names it in errors.
    public static func parse(_ text: String, file: String = "<inline>") throws(ConfigError) -> DaemonConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, line: nil, column: nil, path: "", message: "empty configuration: at least one service is needed")
            }
            root = node
        } catch let e as ConfigError {
            throw e
        } catch let e as YamlError {
            throw yamlError(e, file: file)
        } catch {
            throw ConfigError(file: file, line: nil, column: nil, path: "", message: "\(error)")
        }
        let fail = { (path: [PathStep], message: String) -> ConfigError in
            let mark = locate(root, path)
            return ConfigError(file: file, line: mark?.line, column: mark?.column, path: render(path), message: message)
        }
        try checkKeys(root, file: file, fail: fail)
        let config: DaemonConfig
        do {
            config = try YAMLDecoder().decode(DaemonConfig.self, from: text)
        } catch let e as DecodingError {
            let (path, message) = describe(e)
            throw fail(path, message)
        } catch {
            throw fail([], "\(error)")
        }
        try validate(config, fail: fail)
        return config
    }

    // MARK: keys

    private static func checkKeys(_ root: Node, file: String, fail: ([PathStep], String) -> ConfigError) throws(ConfigError) {
        guard case .mapping(let top) = root else { throw fail([], "the configuration must be a mapping of keys") }
        try checkMapping(top, allowed: Set(DaemonConfig.CodingKeys.allCases.map(\.rawValue)), at: [], file: file)
        if let control = top["control"] {
            guard case .mapping(let m) = control else { throw fail([.key("control")], "must be a mapping (socket, mode, idle_timeout)") }
            try checkMapping(m, allowed: Set(ControlConfig.CodingKeys.allCases.map(\.rawValue)), at: [.key("control")], file: file)
        }
        guard let services = top["services"] else { return }
        guard case .sequence(let list) = services else { throw fail([.key("services")], "must be a list of services") }
        for (i, s) in list.enumerated() {
            let at: [PathStep] = [.key("services"), .index(i)]
            guard case .mapping(let m) = s else { throw fail(at, "a service must be a mapping") }
            var allowed = commonServiceKeys
            if let p = m["protocol"]?.string, let proto = ServiceProtocol(rawValue: p) {
                if proto == .proxy { throw fail(at + [.key("protocol")], "protocol proxy is not supported yet") }
                allowed.formUnion(protocolKeys[proto] ?? [])
            } else {
                allowed.formUnion(protocolKeys.values.joined())
            }
            try checkMapping(m, allowed: allowed, at: at, file: file)
            if let routes = m["routes"], case .sequence(let list) = routes {
                for (r, route) in list.enumerated() {
                    guard case .mapping(let rm) = route else { throw fail(at + [.key("routes"), .index(r)], "a route must be a mapping") }
                    try checkMapping(rm, allowed: Set(RouteConfig.CodingKeys.allCases.map(\.rawValue)), at: at + [.key("routes"), .index(r)], file: file)
                }
            }
            if let codec = m["codec"] {
                guard case .mapping(let cm) = codec else { throw fail(at + [.key("codec")], "must be a mapping") }
                try checkMapping(cm, allowed: Set(CodecConfig.CodingKeys.allCases.map(\.rawValue)), at: at + [.key("codec")], file: file)
            }
        }
    }

    /// Every key of `m` must be in `allowed`; an offending key is reported where the key stands.
    private static func checkMapping(_ m: Node.Mapping, allowed: Set<String>, at: [PathStep], file: String) throws(ConfigError) {
        var seen: Set<String> = []
        for (k, _) in m {
            let fail = { (path: [PathStep], message: String) in
                ConfigError(file: file, line: k.mark?.line, column: k.mark?.column, path: render(path), message: message)
            }
            guard let key = k.string else { throw fail(at, "keys must be plain strings") }
            if !seen.insert(key).inserted { throw fail(at + [.key(key)], "key given twice") }
            if notYet.contains(key) { throw fail(at + [.key(key)], "\"\(key)\" is not supported yet") }
            if !allowed.contains(key) {
                throw fail(at + [.key(key)], "unknown key \"\(key)\" (allowed here: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }

    // MARK: meaning

    private static func validate(_ c: DaemonConfig, fail: ([PathStep], String) -> ConfigError) throws(ConfigError) {
        /// A numeric value outside its range (ConfigRanges) is refused where it stands.
        func check(_ r: NumericRange, _ value: Int64?, _ path: [PathStep]) throws(ConfigError) {
            guard let value, !r.contains(value) else { return }
            throw fail(path, "must be \(r), not \(NumericRange.render(value, r.unit))")
        }
        func check(_ r: NumericRange, _ value: Int?, _ path: [PathStep]) throws(ConfigError) {
            try check(r, value.map { Int64($0) }, path)
        }
        try check(ConfigRanges.drainTimeout, c.drainTimeout.milliseconds, [.key("drain_timeout")])
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
        var names: Set<String> = []
        var addresses: [NetworkAddress: String] = [:]
        for (i, s) in c.services.enumerated() {
            let at: [PathStep] = [.key("services"), .index(i)]
            try check(ConfigRanges.readBufferCap, s.readBufferCap?.bytes, at + [.key("read_buffer_cap")])
            try check(ConfigRanges.writeBufferCap, s.writeBufferCap?.bytes, at + [.key("write_buffer_cap")])
            try check(ConfigRanges.idleTimeout, s.idleTimeout?.milliseconds, at + [.key("idle_timeout")])
            try check(ConfigRanges.maxConnections, s.maxConnections, at + [.key("max_connections")])
            try check(ConfigRanges.interval, s.interval?.milliseconds, at + [.key("interval")])
            try check(ConfigRanges.headerTimeout, s.headerTimeout?.milliseconds, at + [.key("header_timeout")])
            try check(ConfigRanges.keepaliveTimeout, s.keepaliveTimeout?.milliseconds, at + [.key("keepalive_timeout")])
            try check(ConfigRanges.sendTimeout, s.sendTimeout?.milliseconds, at + [.key("send_timeout")])
            try check(ConfigRanges.fileCacheValid, s.fileCacheValid?.milliseconds, at + [.key("file_cache_valid")])
            try check(ConfigRanges.maxBodySize, s.maxBodySize?.bytes, at + [.key("max_body_size")])
            if let codec = s.codec {
                let cp = at + [.key("codec")]
                try check(ConfigRanges.delimiter, codec.delimiter, cp + [.key("delimiter")])
                try check(ConfigRanges.frameLength, codec.frameLength, cp + [.key("frame_length")])
                try check(ConfigRanges.lengthFieldOffset, codec.lengthFieldOffset, cp + [.key("length_field_offset")])
                try check(ConfigRanges.lengthFieldLength, codec.lengthFieldLength, cp + [.key("length_field_length")])
                try check(ConfigRanges.lengthAdjustment, codec.lengthAdjustment, cp + [.key("length_adjustment")])
                try check(ConfigRanges.initialBytesToStrip, codec.initialBytesToStrip, cp + [.key("initial_bytes_to_strip")])
                try check(ConfigRanges.maxFrameLength, codec.maxFrameLength?.bytes, cp + [.key("max_frame_length")])
            }
            for (r, route) in (s.routes ?? []).enumerated() {
                try check(ConfigRanges.status, route.status, at + [.key("routes"), .index(r), .key("status")])
            }
            guard !s.name.isEmpty, s.name.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == 0x2D || $0 == 0x5F }), s.name.utf8.count <= 64 else {
                throw fail(at + [.key("name")], "a name is 1–64 letters, digits, '-' or '_'")
            }
            guard names.insert(s.name).inserted else { throw fail(at + [.key("name")], "service name \"\(s.name)\" is used twice") }
            if s.protocol == .http {
                guard let routes = s.routes, !routes.isEmpty else { throw fail(at, "an http service needs routes") }
                if let log = s.accessLog {
                    let dir = log.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
                    var st = stat()
                    guard log.hasPrefix("/"), !log.hasSuffix("/"), stat(dir.isEmpty ? "/" : dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                        throw fail(at + [.key("access_log")], "must be an absolute file path in an existing directory")
                    }
                    if lstat(log, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
                        throw fail(at + [.key("access_log")], "exists and is not a regular file")
                    }
                }
                var paths: Set<String> = []
                for (r, route) in routes.enumerated() {
                    let rp = at + [.key("routes"), .index(r)]
                    guard route.path.hasPrefix("/") else { throw fail(rp + [.key("path")], "a route path starts with /") }
                    guard paths.insert(route.path).inserted else { throw fail(rp + [.key("path")], "route \(route.path) is given twice") }
                    if let ct = route.contentType, ct.contains("\r") || ct.contains("\n") { throw fail(rp + [.key("content_type")], "one line") }
                    if let root = route.root {
                        if route.body != nil || route.status != nil || route.contentType != nil {
                            throw fail(rp + [.key("root")], "a route serves either files (root) or a fixed response (body, status, content_type)")
                        }
                        var st = stat()
                        guard root.hasPrefix("/"), stat(root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                            throw fail(rp + [.key("root")], "must be an existing directory given by an absolute path")
                        }
                    }
                }
            }
            guard !s.listen.isEmpty else { throw fail(at + [.key("listen")], "a service needs at least one listen address") }
            for (j, text) in s.listen.enumerated() {
                let addressPath = at + [.key("listen"), .index(j)]
                let address: NetworkAddress
                do { address = try NetworkAddress(parsing: text) } catch { throw fail(addressPath, "\(error)") }
                if address.network.isDatagram && s.protocol != .echo && s.protocol != .framed {
                    throw fail(addressPath, "protocol \(s.protocol.rawValue) needs a stream address (tcp or unix)")
                }
                if address.network == .unix && !address.path.hasPrefix("/") { throw fail(addressPath, "a unix socket path must be absolute") }
                if address.network == .unix && address.path == c.control.socket { throw fail(addressPath, "\(text) is the control socket") }
                if address.network == .unix || address.port != 0 {  // port 0 always gets a port of its own
                    if let other = addresses[address] { throw fail(addressPath, "\(text) is already used by service \"\(other)\"") }
                    addresses[address] = s.name
                }
            }
            if let w = s.write, w != "sync" && w != "async" { throw fail(at + [.key("write")], "must be sync or async") }
            if s.protocol == .push {
                if let m = s.message, m.contains("\n") || m.contains("\r") || m.utf8.count > 4096 {
                    throw fail(at + [.key("message")], "one line of at most 4096 bytes (gnetd adds the newline)")
                }
            }
            if s.protocol == .framed {
                guard let codec = s.codec else { throw fail(at, "a framed service needs a codec") }
                do { _ = try codec.makeCodec() } catch { throw fail(at + [.key("codec")], "\(error)") }
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
    static func locate(_ root: Node, _ path: [PathStep]) -> Mark? {
        var node = root
        for step in path {
            switch (step, node) {
            case (.key(let k), .mapping(let m)):
                // Point at the key itself when it is the last step (its value may be absent).
                if let entry = m.first(where: { $0.key.string == k }) { node = entry.value } else { return node.mark }
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
            var message = ctx.debugDescription
            if ctx.codingPath.last.map({ $0.stringValue == "protocol" }) == true {
                message = "protocol must be one of \(ServiceProtocol.allCases.map(\.rawValue).joined(separator: ", "))"
            }
            return (steps(ctx.codingPath), message)
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

    private static func yamlError(_ e: YamlError, file: String) -> ConfigError {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, path: "", message: "YAML: \(problem)")
        default:
            return ConfigError(file: file, line: nil, column: nil, path: "", message: "YAML: \(e)")
        }
    }
}

func onlineCPUs() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
