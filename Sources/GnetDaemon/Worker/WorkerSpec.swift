import Foundation

/// Everything a worker process needs, handed over by the supervisor in the environment
/// (`GNETD_WORKER`, JSON) together with the inherited descriptors it names.
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
    public var services: [ServiceConfig]

    static let environmentKey = "GNETD_WORKER"

    func encoded() -> String {
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String) -> WorkerSpec? {
        try? JSONDecoder().decode(WorkerSpec.self, from: Data(text.utf8))
    }
}
