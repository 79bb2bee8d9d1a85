#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// What a supervisor hands to the new binary it re-executes itself into (same pid, so systemd
/// keeps following it): the descriptors it keeps open across `execve` — listening sockets, the
/// control socket, the stats page, each live worker's status channel, the control client
/// waiting for the reload's outcome — and the state that must outlive the old image. Travels as
/// JSON in a memfd named by `GNETD_REEXEC`, like a worker's spec.
struct ReexecHandoff {
    /// The environment variable naming the handoff memfd.
    static let environmentKey = "GNETD_REEXEC"

    /// The sockets bound for one address (a `ListenerSet` entry).
    struct ListenerEntry {
        let address: String
        /// The service and position a port-0 address was bound for.
        let owner: String?
        let fds: [Int32]
        let shared: Bool
        let adopted: Bool
        /// The Unix socket file we bound (removed when the address goes).
        let socketFile: String?
    }

    /// A socket systemd passed (socket activation), by the service name it was passed for.
    struct PassedSocket {
        let service: String
        let fd: Int32
        let address: String
    }

    /// A live worker: still our child after the exec, adopted by the new image.
    struct Worker {
        let pid: pid_t
        let index: Int
        let generation: Int
        let statsSlot: Int
        /// The supervisor's end of its status channel (nil once that closed).
        let channelFD: Int32?
        let ready: Bool
        let retiring: Bool
        /// Monotonic start time (ns): the clock is the machine's, the same after the exec.
        let started: Int64
        /// Its services, in the order that places their figures in its stats slot.
        let services: [(name: String, kind: String)]
        let build: BuildStamp?
    }

    var listeners: [ListenerEntry] = []
    var passedSockets: [PassedSocket] = []
    var controlFD: Int32 = -1
    /// The control socket file we bound (removed at exit).
    var controlSocketFile: String?
    var statsFD: Int32 = -1
    var workers: [Worker] = []
    var generation = 0
    var workerCount = 0
    var reloadsOK = 0, reloadsFailed = 0, respawns = 0
    var quickDeaths: [Int: Int] = [:]
    var workerLastErrors: [Int: String] = [:]
    var lastError: String?
    var retired = Supervisor.RetiredTotals()
    /// The configuration file reloads read (nil: the built-in one), and the configuration the
    /// current generation runs, as text.
    var configPath: String?
    var configFile = ""
    var configText = ""
    /// The supervisor's start (monotonic ns), so uptime goes on.
    var startedAt: Int64 = 0
    /// Re-executions so far, this one included.
    var execCount = 0
    /// The control client that asked for the reload: the new image answers it.
    var replyFD: Int32?

    /// Every descriptor the new image inherits (the handoff memfd aside).
    var descriptors: [Int32] {
        listeners.flatMap(\.fds) + passedSockets.map(\.fd) + [controlFD, statsFD] + workers.compactMap(\.channelFD) + (replyFD.map { [$0] } ?? [])
    }

    /// The handoff as JSON.
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "listeners": .array(listeners.map { l in
                var e: [String: JSONValue] = ["address": .string(l.address), "fds": .array(l.fds.map { .init($0) }),
                                              "shared": .bool(l.shared), "adopted": .bool(l.adopted)]
                if let owner = l.owner { e["owner"] = .string(owner) }
                if let file = l.socketFile { e["socketFile"] = .string(file) }
                return .object(e)
            }),
            "passedSockets": .array(passedSockets.map { ["service": .string($0.service), "fd": .init($0.fd), "address": .string($0.address)] }),
            "controlFD": .init(controlFD), "statsFD": .init(statsFD),
            "workers": .array(workers.map { w in
                var e: [String: JSONValue] = [
                    "pid": .init(w.pid), "index": .init(w.index), "generation": .init(w.generation), "statsSlot": .init(w.statsSlot),
                    "ready": .bool(w.ready), "retiring": .bool(w.retiring), "started": .init(w.started),
                    "services": .array(w.services.map { ["name": .string($0.name), "kind": .string($0.kind)] }),
                ]
                if let fd = w.channelFD { e["channelFD"] = .init(fd) }
                if let b = w.build { e["buildStamp"] = .object(b.json) }
                return .object(e)
            }),
            "generation": .init(generation), "workerCount": .init(workerCount), "reloadsOK": .init(reloadsOK),
            "reloadsFailed": .init(reloadsFailed), "respawns": .init(respawns),
            "quickDeaths": .object(Dictionary(uniqueKeysWithValues: quickDeaths.map { (String($0.key), JSONValue($0.value)) })),
            "workerLastErrors": .object(Dictionary(uniqueKeysWithValues: workerLastErrors.map { (String($0.key), JSONValue.string($0.value)) })),
            "retired": retired.json, "configFile": .string(configFile), "configText": .string(configText),
            "startedAt": .init(startedAt), "execCount": .init(execCount),
        ]
        if let controlSocketFile { o["controlSocketFile"] = .string(controlSocketFile) }
        if let lastError { o["lastError"] = .string(lastError) }
        if let configPath { o["configPath"] = .string(configPath) }
        if let replyFD { o["replyFD"] = .init(replyFD) }
        return .object(o)
    }
}

/// Why a handoff could not be taken over: the new image refuses to start.
struct HandoffError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
