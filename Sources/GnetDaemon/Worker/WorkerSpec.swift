#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// Everything a worker process needs, handed over by the supervisor as JSON in an inherited
/// memfd (its number in `GNETD_WORKER`: an environment string is limited to 128 KiB, which a
/// few large route bodies would exceed) together with the inherited descriptors it names.
public struct WorkerSpec: Codable, Sendable {
    /// One inherited listening socket.
    public struct ListenerSpec: Codable, Sendable {
        /// The descriptor number in the worker.
        public var fd: Int32
        /// Index into `services`.
        public var service: Int
        /// The address it was bound to (or adopted for).
        public var address: String
        /// Shared by all workers (Unix sockets, systemd-passed sockets): watched with EPOLLEXCLUSIVE.
        public var shared: Bool
    }

    public var index: Int
    public var generation: Int
    /// The worker's slot in the stats page.
    public var slot: Int
    /// The worker's end of its status channel (a Unix stream socket pair).
    public var statusFD: Int32
    /// The stats page memfd.
    public var statsFD: Int32
    public var drainTimeoutMs: Int64
    /// How often an idle loop wakes to show it is alive (its iteration counter moves); 0 = the
    /// supervisor's watchdog is off.
    public var heartbeatMs: Int64
    public var user: String?
    public var logLevel: String
    public var listeners: [ListenerSpec]
    /// The configuration the supervisor validated, as text (and where it came from, for
    /// messages): the worker decodes its services from it with the same service kinds.
    public var configFile: String
    public var configText: String

    static let environmentKey = "GNETD_WORKER"

    /// The spec as JSON in a new memfd (close-on-exec; the caller passes a copy), read from
    /// its start.
    func memfd() throws(GnetError) -> Int32 { try JSONMemfd.create(name: "gnetd-worker-spec", json) }

    /// Reads the spec from the memfd `fd` (from its start) and closes it; nil when it is not one.
    static func read(fd: Int32) -> WorkerSpec? { JSONMemfd.read(fd: fd).flatMap { WorkerSpec(json: $0) } }

    /// The spec as the JSON object the worker reads, one member per property.
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "index": .init(index), "generation": .init(generation), "slot": .init(slot), "statusFD": .init(statusFD),
            "statsFD": .init(statsFD), "drainTimeoutMs": .init(drainTimeoutMs), "heartbeatMs": .init(heartbeatMs),
            "logLevel": .string(logLevel), "configFile": .string(configFile), "configText": .string(configText),
            "listeners": .array(listeners.map { l in
                ["fd": .init(l.fd), "service": .init(l.service), "address": .string(l.address), "shared": .bool(l.shared)]
            }),
        ]
        if let user { o["user"] = .string(user) }
        return .object(o)
    }
}

extension WorkerSpec {
    /// The spec from `json`; nil when a member is missing or of the wrong type.
    init?(json: JSONValue) {
        func int(_ key: String) -> Int? { json[key]?.int.flatMap { Int(exactly: $0) } }
        func fd(_ v: JSONValue?) -> Int32? { v?.int.flatMap { Int32(exactly: $0) } }
        guard let index = int("index"), let generation = int("generation"), let slot = int("slot"),
              let statusFD = fd(json["statusFD"]), let statsFD = fd(json["statsFD"]),
              let drainTimeoutMs = json["drainTimeoutMs"]?.int, let heartbeatMs = json["heartbeatMs"]?.int,
              let logLevel = json["logLevel"]?.string, let configFile = json["configFile"]?.string,
              let configText = json["configText"]?.string, let list = json["listeners"]?.array else { return nil }
        var listeners: [ListenerSpec] = []
        for l in list {
            guard let fd = fd(l["fd"]), let service = l["service"]?.int.flatMap({ Int(exactly: $0) }),
                  let address = l["address"]?.string, let shared = l["shared"]?.bool else { return nil }
            listeners.append(ListenerSpec(fd: fd, service: service, address: address, shared: shared))
        }
        let user: String?
        switch json["user"] {
        case nil, .null?: user = nil
        case .string(let name)?: user = name
        default: return nil
        }
        self.init(index: index, generation: generation, slot: slot, statusFD: statusFD, statsFD: statsFD,
                  drainTimeoutMs: drainTimeoutMs, heartbeatMs: heartbeatMs, user: user, logLevel: logLevel,
                  listeners: listeners, configFile: configFile, configText: configText)
    }
}
