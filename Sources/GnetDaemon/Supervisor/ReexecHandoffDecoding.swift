#if canImport(Glibc)
import Glibc
#endif
import Gnet

extension ReexecHandoff {
    /// The handoff named by `GNETD_REEXEC`, which is unset (workers must not inherit it); nil
    /// when the variable is not set — an ordinary start. Throws when it is set but names no
    /// readable handoff: the process was not started by a supervisor re-executing itself, and
    /// must not guess.
    static func takeFromEnvironment() throws(HandoffError) -> ReexecHandoff? {
        guard let raw = getenv(environmentKey) else { return nil }
        let text = String(cString: raw)
        unsetenv(environmentKey)
        guard let fd = Int32(text), fd > 2 else { throw HandoffError("\(environmentKey)=\(text.prefix(64)) does not name a descriptor") }
        guard fcntl(fd, F_GETFD) >= 0 else { throw HandoffError("\(environmentKey) names descriptor \(fd), which is not open") }
        guard let json = JSONMemfd.read(fd: fd) else { throw HandoffError("\(environmentKey) names descriptor \(fd), which holds no JSON") }
        return try ReexecHandoff(json: json)
    }

    /// The handoff in `json`; throws naming the first member missing or of the wrong type.
    init(json: JSONValue) throws(HandoffError) {
        let r = Members(json, "handoff")
        for l in try r.array("listeners") {
            let m = Members(l, "listener")
            listeners.append(ListenerEntry(address: try m.string("address"), owner: m.optionalString("owner"), fds: try m.descriptors("fds"),
                                           shared: try m.bool("shared"), adopted: try m.bool("adopted"), socketFile: m.optionalString("socketFile")))
        }
        for p in try r.array("passedSockets") {
            let m = Members(p, "passed socket")
            passedSockets.append(PassedSocket(service: try m.string("service"), fd: try m.descriptor("fd"), address: try m.string("address")))
        }
        controlFD = try r.descriptor("controlFD")
        controlSocketFile = r.optionalString("controlSocketFile")
        statsFD = try r.descriptor("statsFD")
        for w in try r.array("workers") {
            let m = Members(w, "worker")
            var services: [(name: String, kind: String)] = []
            for s in try m.array("services") {
                let sm = Members(s, "worker service")
                services.append((try sm.string("name"), try sm.string("kind")))
            }
            workers.append(Worker(pid: try m.pid("pid"), index: try m.int("index"), generation: try m.int("generation"),
                                  statsSlot: try m.int("statsSlot"), channelFD: w["channelFD"] == nil ? nil : try m.descriptor("channelFD"),
                                  ready: try m.bool("ready"), retiring: try m.bool("retiring"), started: Int64(try m.int("started")),
                                  services: services, build: BuildStamp(json: w["buildStamp"])))
        }
        guard workers.allSatisfy({ $0.pid > 0 && $0.statsSlot >= 0 && $0.statsSlot < StatsPage.slotCount }) else {
            throw HandoffError("handoff: a worker with an impossible pid or stats slot")
        }
        generation = try r.int("generation")
        workerCount = try r.int("workerCount")
        reloadsOK = try r.int("reloadsOK")
        reloadsFailed = try r.int("reloadsFailed")
        respawns = try r.int("respawns")
        for (k, v) in json["quickDeaths"]?.object ?? [:] { if let i = Int(k), let n = v.int { quickDeaths[i] = Int(n) } }
        for (k, v) in json["workerLastErrors"]?.object ?? [:] { if let i = Int(k), let e = v.string { workerLastErrors[i] = e } }
        lastError = r.optionalString("lastError")
        guard let totals = json["retired"], let retired = Supervisor.RetiredTotals(json: totals) else { throw HandoffError("handoff: missing or malformed \"retired\"") }
        self.retired = retired
        configPath = r.optionalString("configPath")
        configFile = try r.string("configFile")
        configText = try r.string("configText")
        startedAt = Int64(try r.int("startedAt"))
        execCount = try r.int("execCount")
        replyFD = json["replyFD"] == nil ? nil : try r.descriptor("replyFD")
    }
}

/// The members of one JSON object of a handoff, read with errors that say which is wrong.
private struct Members {
    let value: JSONValue
    let what: String
    init(_ value: JSONValue, _ what: String) { self.value = value; self.what = what }

    private func wrong(_ key: String, _ expected: String) -> HandoffError {
        HandoffError("\(ReexecHandoff.environmentKey): \(what): \"\(key)\" is missing or not \(expected)")
    }

    func int(_ key: String) throws(HandoffError) -> Int {
        guard let v = value[key]?.int, let i = Int(exactly: v) else { throw wrong(key, "a whole number") }
        return i
    }
    func pid(_ key: String) throws(HandoffError) -> pid_t {
        guard let v = value[key]?.int, let pid = pid_t(exactly: v), pid > 0 else { throw wrong(key, "a process id") }
        return pid
    }
    func descriptor(_ key: String) throws(HandoffError) -> Int32 {
        guard let v = value[key]?.int, let fd = Int32(exactly: v), fd > 2 else { throw wrong(key, "a descriptor number") }
        return fd
    }
    func descriptors(_ key: String) throws(HandoffError) -> [Int32] {
        guard let list = value[key]?.array else { throw wrong(key, "an array") }
        return try list.map { v throws(HandoffError) in
            guard let n = v.int, let fd = Int32(exactly: n), fd > 2 else { throw wrong(key, "descriptor numbers") }
            return fd
        }
    }
    func string(_ key: String) throws(HandoffError) -> String {
        guard let s = value[key]?.string else { throw wrong(key, "a string") }
        return s
    }
    func optionalString(_ key: String) -> String? { value[key]?.string }
    func bool(_ key: String) throws(HandoffError) -> Bool {
        guard let b = value[key]?.bool else { throw wrong(key, "true or false") }
        return b
    }
    func array(_ key: String) throws(HandoffError) -> [JSONValue] {
        guard let a = value[key]?.array else { throw wrong(key, "an array") }
        return a
    }
}
