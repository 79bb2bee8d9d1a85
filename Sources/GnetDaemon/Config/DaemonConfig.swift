import Gnet

/// One service: a kind (`protocol`) served on a set of listen addresses, with the limits every
/// service has and the kind's own settings.
public struct ServiceConfig: Decodable, Sendable {
    public var name: String
    /// The kind's name (`protocol` in the file): one of the daemon's `ServiceKind`s.
    public var kind: String
    public var listen: [String]
    public var readBufferCap: ConfigSize?
    public var writeBufferCap: ConfigSize?
    public var idleTimeout: ConfigDuration?
    public var maxConnections: Int?
    /// The kind's own settings, decoded by it from the same mapping.
    public var settings: any ServiceSettings

    enum CodingKeys: String, CodingKey {
        case name, `protocol`, listen
        case readBufferCap = "read_buffer_cap"
        case writeBufferCap = "write_buffer_cap"
        case idleTimeout = "idle_timeout"
        case maxConnections = "max_connections"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decode(String.self, forKey: .protocol)
        listen = try c.decode([String].self, forKey: .listen)
        readBufferCap = try c.decodeIfPresent(ConfigSize.self, forKey: .readBufferCap)
        writeBufferCap = try c.decodeIfPresent(ConfigSize.self, forKey: .writeBufferCap)
        idleTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .idleTimeout)
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections)
        let kinds = decoder.userInfo[.serviceKinds] as? [ServiceKind] ?? []
        let wanted = kind
        guard let k = kinds.first(where: { $0.name == wanted }) else {
            let known = kinds.map(\.name)
            throw DecodingError.dataCorruptedError(forKey: .protocol, in: c, debugDescription:
                ConfigLoader.notYetKinds.contains(wanted) ? "protocol \(wanted) is not supported yet"
                    : "protocol must be one of \(known.joined(separator: ", "))")
        }
        settings = try k.decode(decoder)
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

extension CodingUserInfoKey {
    /// The `[ServiceKind]` a configuration's services are decoded with.
    static let serviceKinds = CodingUserInfoKey(rawValue: "gnet.serviceKinds")!
    /// The default control socket (the daemon's identity's).
    static let defaultControlSocket = CodingUserInfoKey(rawValue: "gnet.defaultControlSocket")!
}

/// Where the control socket lives and who may use it.
public struct ControlConfig: Decodable, Equatable, Hashable, Sendable {
    public var socket: String = "/run/gnet/control.sock"
    /// Octal permission bits, e.g. "0660".
    public var mode: String = "0660"
    /// A control client that sends nothing for this long is disconnected.
    public var idleTimeout: ConfigDuration = .seconds(300)

    public init() {}

    public init(socket: String) { self.socket = socket }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        socket = try c.decodeIfPresent(String.self, forKey: .socket)
            ?? decoder.userInfo[.defaultControlSocket] as? String ?? "/run/gnet/control.sock"
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

/// The whole daemon configuration (gnetd.yaml(5)). Unknown keys are errors; absent keys take the
/// defaults documented in gnetd.yaml(5), which are also what the daemon runs without a file.
public struct DaemonConfig: Decodable, Sendable {
    public var workers: WorkerCount = .auto
    public var user: String? = nil
    public var drainTimeout: ConfigDuration = .seconds(30)
    /// How long a draining worker leaves a kept-alive connection waiting for its next request
    /// before closing it (at most `drainTimeout`; absent: 1s, or `drainTimeout` if shorter).
    public var drainIdleGrace: ConfigDuration = .seconds(1)
    /// A worker whose loop makes no progress for this long is killed and replaced (0 = never).
    public var workerStallTimeout: ConfigDuration = .seconds(10)
    public var logLevel: String = "info"
    public var control = ControlConfig()
    public var services: [ServiceConfig] = []
    /// The text this configuration was read from, and the file that held it (`<built-in>` for
    /// an identity's built-in configuration): what the workers decode it from again.
    public internal(set) var sourceFile = "<inline>"
    public internal(set) var sourceText = ""

    enum CodingKeys: String, CodingKey {
        case workers, user
        case drainTimeout = "drain_timeout"
        case drainIdleGrace = "drain_idle_grace"
        case workerStallTimeout = "worker_stall_timeout"
        case logLevel = "log_level"
        case control, services
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        workers = try c.decodeIfPresent(WorkerCount.self, forKey: .workers) ?? .auto
        user = try c.decodeIfPresent(String.self, forKey: .user)
        drainTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .drainTimeout) ?? .seconds(30)
        // Absent: 1s, or drain_timeout when that is shorter.
        drainIdleGrace = try c.decodeIfPresent(ConfigDuration.self, forKey: .drainIdleGrace)
            ?? ConfigDuration(milliseconds: min(1000, drainTimeout.milliseconds))
        workerStallTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .workerStallTimeout) ?? .seconds(10)
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? "info"
        control = try c.decodeIfPresent(ControlConfig.self, forKey: .control)
            ?? ControlConfig(socket: decoder.userInfo[.defaultControlSocket] as? String ?? "/run/gnet/control.sock")
        services = try c.decodeIfPresent([ServiceConfig].self, forKey: .services) ?? []
    }

    /// The worker count `workers` resolves to on this machine.
    public var resolvedWorkers: Int {
        switch workers {
        case .fixed(let n): return n
        case .auto: return max(1, onlineCPUs())
        }
    }
}
