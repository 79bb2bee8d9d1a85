#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A service's own settings: the keys of its mapping in the configuration beyond those every
/// service has (`name`, `protocol`, `listen`, `read_buffer_cap`, `write_buffer_cap`,
/// `idle_timeout`, `max_connections`). Decoded with `Decodable` (name the YAML keys with
/// `CodingKeys`); a key the type does not ask for is refused as unknown, with its file, line and
/// column, and so is a value of the wrong type. `validate()` checks what types cannot.
///
/// Settings are decoded and validated by the supervisor (`--check`, start, every reload)
/// before any worker sees them; a reload whose settings fail changes nothing and says why.
public protocol ServiceSettings: Decodable, Sendable {
    /// Refuses values the type alone admits (ranges, combinations). Throw a `SettingsError`
    /// naming the key, to be reported where it stands in the file.
    func validate() throws(SettingsError)
}

extension ServiceSettings {
    public func validate() throws(SettingsError) {}
}

/// A setting that cannot be used: the key path within the service (`["codec", "delimiter"]`,
/// or `["routes", "2", "path"]` for a list element) and why.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    /// Keys from the service's mapping down to the value; list elements by their index.
    public var key: [String]
    /// What is wrong, e.g. "must be 1 to 4096".
    public var reason: String

    /// `SettingsError(["max_value_size"], "must be at most 512MiB")`.
    public init(_ key: [String], _ reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "\(key.joined(separator: ".")): \(reason)" }
}

/// One kind of service a daemon can run, by the name a configuration gives as `protocol`: how its
/// settings are decoded, which counters it publishes, and how one worker makes its handler.
///
/// A daemon is a list of kinds (`Daemon.main(identity:services:)`); gnetd is the built-in ones
/// (`Daemon.builtInServices`), registered through this same type.
public struct ServiceKind: Sendable {
    /// The name a configuration uses (`protocol: resp`).
    public let name: String
    /// The counters each worker publishes for a service of this kind, in its stats slot, shown
    /// by `gnetctl stats` and the `metrics` service (a worker's slot holds some 2 000 figures for all its services).
    public let counterNames: [String]
    /// The duration histograms each worker keeps for a service of this kind
    /// (`ServiceContext.histogram`), served as Prometheus histograms by the `metrics` service.
    public let histogramNames: [String]
    /// Whether its services may listen on UDP addresses.
    public let acceptsDatagrams: Bool
    let decode: @Sendable (any Decoder) throws -> any ServiceSettings
    let prepare: @Sendable (any ServiceSettings, ServiceContext) throws -> Any?
    let make: @Sendable (any ServiceSettings, Any?, ServiceContext) throws -> any EventHandler

    /// A kind whose handler is made in each worker by `make`, after the worker has switched to
    /// the configured user. `make` may throw to refuse to start (the reason is logged, the
    /// worker exits, and a reload that needed it fails with it).
    public static func kind<Settings: ServiceSettings>(
        _ name: String, settings: Settings.Type, counters: [String] = [], histograms: [String] = [], datagrams: Bool = false,
        make: @escaping @Sendable (Settings, ServiceContext) throws -> any EventHandler
    ) -> ServiceKind {
        kind(name, settings: settings, counters: counters, histograms: histograms, datagrams: datagrams,
             prepare: { _, _ in () }) { s, _, context in
            try make(s, context)
        }
    }

    /// A kind that also needs something done before the worker gives up its privileges (opening
    /// a log in a directory only root may write): `prepare` runs first, as the user gnetd was
    /// started as, and its result reaches `make`, which runs after the switch.
    public static func kind<Settings: ServiceSettings, Prepared>(
        _ name: String, settings: Settings.Type, counters: [String] = [], histograms: [String] = [], datagrams: Bool = false,
        prepare: @escaping @Sendable (Settings, ServiceContext) throws -> Prepared,
        make: @escaping @Sendable (Settings, Prepared, ServiceContext) throws -> any EventHandler
    ) -> ServiceKind {
        ServiceKind(
            name: name, counterNames: counters, histogramNames: histograms, acceptsDatagrams: datagrams,
            decode: { decoder in try Settings(from: decoder) },
            prepare: { settings, context in
                guard let s = settings as? Settings else { throw ServiceKindError.wrongSettings(name) }
                return try prepare(s, context)
            },
            make: { settings, prepared, context in
                guard let s = settings as? Settings, let p = prepared as? Prepared else { throw ServiceKindError.wrongSettings(name) }
                return try make(s, p, context)
            })
    }
}

enum ServiceKindError: Error, CustomStringConvertible {
    case wrongSettings(String)
    var description: String {
        switch self { case .wrongSettings(let k): "service kind \(k) was given another kind's settings" }
    }
}

/// What a service's factory gets in a worker: who it is, a logger, its counters, and hooks into
/// the worker's life.
public final class ServiceContext {
    /// The service's name in the configuration.
    public let serviceName: String
    /// This worker's position in its generation (0 ..< workers).
    public let workerIndex: Int
    /// This worker's generation (one per start or reload).
    public let generation: Int
    /// How long, once the worker drains, a connection waiting idle for its client may stay
    /// before it is closed (`drain_idle_grace`): a service that drains closes idle connections
    /// after this, not at once, so a request already on its way is still answered.
    public internal(set) var drainIdleGrace: Duration = .seconds(1)
    /// Where to write what cannot be answered to a client (standard error, with the daemon's name).
    public let logger: any GnetLogger
    let counterBase: UnsafeMutablePointer<UInt64>?
    let counterNames: [String]
    let histogramBase: UnsafeMutablePointer<UInt64>?
    let histogramNames: [String]
    var reopenLogs: [() -> Void] = []
    /// The daemon's stats page, identity and kinds, for the built-in `metrics` service.
    var page: StatsPage? = nil
    var identity: DaemonIdentity? = nil
    var kinds: [ServiceKind] = []

    init(serviceName: String, workerIndex: Int, generation: Int, logger: any GnetLogger,
         counterBase: UnsafeMutablePointer<UInt64>?, counterNames: [String],
         histogramBase: UnsafeMutablePointer<UInt64>? = nil, histogramNames: [String] = []) {
        self.serviceName = serviceName; self.workerIndex = workerIndex; self.generation = generation
        self.logger = logger; self.counterBase = counterBase; self.counterNames = counterNames
        self.histogramBase = histogramBase; self.histogramNames = histogramNames
    }

    /// The duration histogram declared as `name` by the service's kind: fixed log-spaced
    /// buckets from 100 µs to 10 s in the worker's stats slot, recorded from the loop thread
    /// with relaxed stores. An undeclared name gives one that records nowhere.
    public func histogram(_ name: String) -> DurationHistogram {
        guard let base = histogramBase, let i = histogramNames.firstIndex(of: name) else { return DurationHistogram(base: nil) }
        return DurationHistogram(base: base + i * DurationHistogram.width)
    }

    /// The counter declared as `name` by the service's kind. Adding to it is one relaxed store
    /// to shared memory, on the loop thread; `gnetctl stats` shows it per worker and in total.
    /// An undeclared name gives a counter that counts nowhere.
    public func counter(_ name: String) -> ServiceCounter {
        guard let base = counterBase, let i = counterNames.firstIndex(of: name) else { return ServiceCounter(slot: nil) }
        return ServiceCounter(slot: base + i)
    }

    /// Calls `body` when the operator asks for logs to be reopened (`SIGUSR1` to the daemon,
    /// after logrotate moved the files).
    public func onReopenLogs(_ body: @escaping () -> Void) { reopenLogs.append(body) }
}

/// One of a service's counters in the worker's stats slot. Updated from the worker's loop
/// thread only; read by the supervisor at any time.
public struct ServiceCounter {
    let slot: UnsafeMutablePointer<UInt64>?

    /// Adds `n` (one relaxed store).
    @inline(__always)
    public func add(_ n: UInt64 = 1) {
        if let slot { gnet_counter_add(slot, n) }
    }

    /// Sets the value (for a gauge, such as the number of keys held).
    @inline(__always)
    public func set(_ value: UInt64) {
        if let slot { gnet_counter_store(slot, value) }
    }

    /// The current value.
    public var value: UInt64 { slot.map { gnet_counter_load($0) } ?? 0 }
}
