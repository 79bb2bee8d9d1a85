import Gnet

/// The protocol a service speaks.
public enum ServiceProtocol: String, Codable, Sendable, CaseIterable {
    case echo, http, push, framed, proxy
}

/// A codec for `framed` services (DESIGN §7).
public struct CodecConfig: Codable, Equatable, Hashable, Sendable {
    /// `line`, `delimiter`, `fixed-length` or `length-field`.
    public var type: String
    public var delimiter: Int?
    public var frameLength: Int?
    public var lengthFieldOffset: Int?
    public var lengthFieldLength: Int?
    public var lengthAdjustment: Int?
    public var initialBytesToStrip: Int?
    public var byteOrder: String?
    public var lengthIncludesLengthField: Bool?
    public var maxFrameLength: ConfigSize?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, delimiter
        case frameLength = "frame_length"
        case lengthFieldOffset = "length_field_offset"
        case lengthFieldLength = "length_field_length"
        case lengthAdjustment = "length_adjustment"
        case initialBytesToStrip = "initial_bytes_to_strip"
        case byteOrder = "byte_order"
        case lengthIncludesLengthField = "length_includes_length_field"
        case maxFrameLength = "max_frame_length"
    }

    /// The codec these settings describe.
    public func makeCodec() throws(CodecError) -> any Codec {
        let maxLength = maxFrameLength?.bytes ?? defaultMaxFrameLength
        switch type {
        case "line": return LineCodec(maxFrameLength: maxLength)
        case "delimiter":
            guard let d = delimiter, (0...255).contains(d) else { throw .invalidConfiguration("delimiter must be a byte value 0…255") }
            return DelimiterCodec(delimiter: UInt8(d), maxFrameLength: maxLength)
        case "fixed-length":
            return try FixedLengthCodec(frameLength: frameLength ?? 0, maxFrameLength: maxLength)
        case "length-field":
            guard byteOrder == nil || byteOrder == "big" || byteOrder == "little" else { throw .invalidConfiguration("byte_order must be big or little") }
            return try LengthFieldCodec(lengthFieldOffset: lengthFieldOffset ?? 0, lengthFieldLength: lengthFieldLength ?? 4,
                                        lengthAdjustment: lengthAdjustment ?? 0, initialBytesToStrip: initialBytesToStrip,
                                        bigEndian: byteOrder != "little", lengthIncludesLengthField: lengthIncludesLengthField ?? false,
                                        maxFrameLength: maxLength)
        default:
            throw .invalidConfiguration("codec type must be line, delimiter, fixed-length or length-field, not \"\(type)\"")
        }
    }
}

/// An http route (DESIGN §7): `path` is a prefix, the longest match wins; a fixed response
/// (`body`, `status`, `content_type`) or the files under `root`.
public struct RouteConfig: Codable, Equatable, Hashable, Sendable {
    public var path: String
    public var body: String?
    public var status: Int?
    public var contentType: String?
    public var root: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case path, body, status, root
        case contentType = "content_type"
    }
}

/// One service: a protocol served on a set of listen addresses, with its limits.
public struct ServiceConfig: Codable, Equatable, Hashable, Sendable {
    public var name: String
    public var `protocol`: ServiceProtocol
    public var listen: [String]
    public var readBufferCap: ConfigSize?
    public var writeBufferCap: ConfigSize?
    public var idleTimeout: ConfigDuration?
    public var maxConnections: Int?
    /// echo: `sync` (default) or `async` writes.
    public var write: String?
    /// push: the period and the line sent.
    public var interval: ConfigDuration?
    public var message: String?
    /// framed: the codec.
    public var codec: CodecConfig?
    /// http: routes, timeouts, body limit.
    public var routes: [RouteConfig]?
    public var headerTimeout: ConfigDuration?
    public var keepaliveTimeout: ConfigDuration?
    /// http: how long a client may take no bytes of a response waiting for it.
    public var sendTimeout: ConfigDuration?
    /// http: how long a small file is served from memory before it is looked at again (0 = off).
    public var fileCacheValid: ConfigDuration?
    public var maxBodySize: ConfigSize?
    /// http: the access log file (Common Log Format); absent = none.
    public var accessLog: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, `protocol`, listen
        case readBufferCap = "read_buffer_cap"
        case writeBufferCap = "write_buffer_cap"
        case idleTimeout = "idle_timeout"
        case maxConnections = "max_connections"
        case write, interval, message, codec, routes
        case headerTimeout = "header_timeout"
        case keepaliveTimeout = "keepalive_timeout"
        case sendTimeout = "send_timeout"
        case fileCacheValid = "file_cache_valid"
        case maxBodySize = "max_body_size"
        case accessLog = "access_log"
    }

    public init(name: String, protocol p: ServiceProtocol, listen: [String]) {
        self.name = name; self.protocol = p; self.listen = listen
    }

    /// Engine options for this service's connections.
    public var engineOptions: Options {
        var o = Options()
        o.readBufferCap = readBufferCap?.bytes ?? 0
        o.writeBufferCap = writeBufferCap?.bytes ?? 0
        o.idleTimeout = idleTimeout.map { .milliseconds($0.milliseconds) }
        o.maxConnections = maxConnections ?? 0
        return o
    }
}

/// Where the control socket lives and who may use it.
public struct ControlConfig: Codable, Equatable, Hashable, Sendable {
    public var socket: String = "/run/gnet/control.sock"
    /// Octal permission bits, e.g. "0660".
    public var mode: String = "0660"
    /// A control client that sends nothing for this long is disconnected.
    public var idleTimeout: ConfigDuration = .seconds(300)

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        socket = try c.decodeIfPresent(String.self, forKey: .socket) ?? "/run/gnet/control.sock"
        mode = try c.decodeIfPresent(String.self, forKey: .mode) ?? "0660"
        idleTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .idleTimeout) ?? .seconds(300)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case socket, mode
        case idleTimeout = "idle_timeout"
    }

    /// The mode as permission bits; nil when it is not octal 0000–0777.
    public var permissionBits: UInt32? {
        guard !mode.isEmpty, mode.count <= 4, mode.allSatisfy({ ("0"..."7").contains($0) }), let v = UInt32(mode, radix: 8), v <= 0o777 else { return nil }
        return v
    }
}

/// The whole daemon configuration (DESIGN §7). Unknown keys are errors; absent keys take the
/// defaults documented in gnetd.yaml(5), which are also what `DaemonConfig.builtIn` holds.
public struct DaemonConfig: Codable, Equatable, Sendable {
    public var workers: WorkerCount = .auto
    public var user: String? = nil
    public var drainTimeout: ConfigDuration = .seconds(30)
    /// A worker whose loop makes no progress for this long is killed and replaced (0 = never).
    public var workerStallTimeout: ConfigDuration = .seconds(10)
    public var logLevel: String = "info"
    public var control = ControlConfig()
    public var services: [ServiceConfig] = []

    enum CodingKeys: String, CodingKey, CaseIterable {
        case workers, user
        case drainTimeout = "drain_timeout"
        case workerStallTimeout = "worker_stall_timeout"
        case logLevel = "log_level"
        case control, services
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        workers = try c.decodeIfPresent(WorkerCount.self, forKey: .workers) ?? .auto
        user = try c.decodeIfPresent(String.self, forKey: .user)
        drainTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .drainTimeout) ?? .seconds(30)
        workerStallTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .workerStallTimeout) ?? .seconds(10)
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? "info"
        control = try c.decodeIfPresent(ControlConfig.self, forKey: .control) ?? ControlConfig()
        services = try c.decodeIfPresent([ServiceConfig].self, forKey: .services) ?? []
    }

    /// What gnetd runs with no configuration file: an echo service on port 9000 (TCP and UDP).
    public static var builtIn: DaemonConfig {
        var c = DaemonConfig()
        c.services = [ServiceConfig(name: "echo", protocol: .echo, listen: ["tcp://0.0.0.0:9000", "udp://0.0.0.0:9000"])]
        return c
    }

    /// The worker count `workers` resolves to on this machine.
    public var resolvedWorkers: Int {
        switch workers {
        case .fixed(let n): return n
        case .auto: return max(1, onlineCPUs())
        }
    }
}
