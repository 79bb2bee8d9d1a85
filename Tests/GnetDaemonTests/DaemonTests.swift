#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gnet
import GnetDaemon
import GnetProcess
import Testing

let echoService = """
services:
  - name: echo
    protocol: echo
    listen: ["tcp://127.0.0.1:0", "unix://DIR/echo.sock"]

"""

func echoConfig(_ h: DaemonHarness) -> String { echoService.replacingOccurrences(of: "DIR", with: h.dir) }

/// Continuous client load: `threads` threads, each alternating a short connection (connect,
/// echo, close) with echoes on a long connection that lives for 100 exchanges (so, across
/// reloads, but within the drain timeout). Counts operations and failures.
final class ClientLoad: @unchecked Sendable {
    let address: NetworkAddress
    private let lock = NSLock()
    private var running = true
    private(set) var operations = 0
    private(set) var failures: [String] = []
    private var threads: [Thread] = []
    private var finished = 0

    init(_ address: NetworkAddress, threads count: Int = 4) {
        self.address = address
        for t in 0..<count {
            let thread = Thread { [self] in work(t) }
            threads.append(thread)
            thread.start()
        }
    }

    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    private func record(_ failure: String?) {
        lock.lock()
        if let failure { failures.append(failure) } else { operations += 1 }
        lock.unlock()
    }

    private func work(_ t: Int) {
        var long: EchoClient? = nil
        var i = 0
        while isRunning {
            i += 1
            do {
                let c = try EchoClient(address)
                try c.echo("short \(t) \(i)")
                record(nil)
                if long == nil || i % 100 == 0 { long = try EchoClient(address) }
                try long?.echo("long \(t) \(i)")
                record(nil)
            } catch {
                record("thread \(t) op \(i): \(error)")
                long = nil
            }
        }
        lock.lock(); finished += 1; lock.unlock()
    }

    /// Stops the load and waits (bounded) for every thread to finish.
    func stop() -> (operations: Int, failures: [String]) {
        lock.lock(); running = false; lock.unlock()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            lock.lock(); let done = finished == threads.count; lock.unlock()
            if done { break }
            usleep(5000)
        }
        lock.lock(); defer { lock.unlock() }
        return (operations, failures)
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct DaemonTests {
    @Test func startsNotifiesReadyAndCountsTraffic() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        let seconds = try h.start()
        print("figure: gnetd start to READY=1: \(Int(seconds * 1000)) ms")
        let address = try h.addresses("echo")[0]
        let before = try h.request("stats")["totals"] as? [String: Any]
        for i in 0..<10 { try EchoClient(address).echo("message \(i)") }
        let unix = try h.addresses("echo")[1]
        try EchoClient(unix).echo("over unix")
        #expect(eventually { ((try? h.request("stats")["totals"] as? [String: Any])?["bytes_in"] as? Int ?? 0) >= 99 })
        let stats = try h.request("stats")
        let totals = stats["totals"] as? [String: Any] ?? [:]
        #expect((totals["connections_accepted"] as? Int ?? 0) >= 11)
        #expect((before?["bytes_in"] as? Int ?? -1) == 0)
        let workers = stats["workers"] as? [[String: Any]] ?? []
        #expect(workers.count == 2 && workers.allSatisfy { $0["state"] as? String == "serving" })
        // gnetctl, the real client, in both argument orders and as JSON.
        let (code, table) = try h.gnetctl(["-s", h.controlPath, "stats"])
        #expect(code == 0 && table.contains("serving") && table.contains("total"))
        let (code2, json) = try h.gnetctl(["stats", "-s", h.controlPath, "--json"])
        #expect(code2 == 0 && json.contains("\"ok\":true"))
        let (code3, status) = try h.gnetctl(["status", "--socket", h.controlPath])
        #expect(code3 == 0 && status.contains("generation 1"))
        // The socket from the daemon's configuration file, before the command (as the unit's
        // ExecReload= gives it) and after it.
        let (code4, fromConfig) = try h.gnetctl(["--config", h.configPath, "status"])
        #expect(code4 == 0 && fromConfig.contains("generation 1"))
        let (code5, _) = try h.gnetctl(["status", "-c", h.configPath])
        #expect(code5 == 0)
        // GNETCTL_SOCKET when no option names one; -s and -c win over it.
        let (code6, fromEnvironment) = try h.gnetctl(["status"], environment: ["GNETCTL_SOCKET=\(h.controlPath)"])
        #expect(code6 == 0 && fromEnvironment.contains("generation 1"))
        let nowhere = "GNETCTL_SOCKET=\(h.dir)/nothing.sock"
        let (code7, _) = try h.gnetctl(["status"], environment: [nowhere])
        #expect(code7 == 3, "GNETCTL_SOCKET is used")
        let (code8, _) = try h.gnetctl(["-s", h.controlPath, "status"], environment: [nowhere])
        let (code9, _) = try h.gnetctl(["-c", h.configPath, "status"], environment: [nowhere])
        #expect(code8 == 0 && code9 == 0, "-s and -c come before GNETCTL_SOCKET")
        // A file naming no control socket, other than gnetd's own, is a usage error: its
        // daemon's default is not gnetctl's to guess.
        let bare = h.dir + "/bare.yaml"
        #expect(FileManager.default.createFile(atPath: bare, contents: Data("services: []\n".utf8)))
        let (code10, _) = try h.gnetctl(["status", "-c", bare], environment: ["GNETCTL_SOCKET=\(h.controlPath)"])
        #expect(code10 == 2)
        // gnetd started under the name gnetctl (how the Debian package installs gnetctl) is gnetctl.
        let link = h.dir + "/gnetctl"
        #expect(symlink(DaemonHarness.binDir + "/gnetd", link) == 0)
        let linked = try ChildProcess([link, "stats", "-s", h.controlPath], discardStderr: true)
        let linkedTable = linked.readAll(timeout: 30)
        #expect(linked.wait(timeout: 30) == 0 && linkedTable.contains("serving") && linkedTable.contains("total"))
        #expect(h.stop() == 0)
        #expect(h.waitFor(notification: "STOPPING=1", timeout: 5) != nil)
        #expect(access(h.controlPath, F_OK) != 0, "control socket removed")
    }

    @Test func killedWorkerIsReplacedWhileTheOtherKeepsServing() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        try h.start()
        let address = try h.addresses("echo")[0]
        let clients = try (0..<16).map { _ in try EchoClient(address) }
        for c in clients { try c.echo("before") }
        let victim = try #require(try h.workers().first { $0["index"] as? Int == 0 })
        let victimPid = try #require(victim["pid"] as? Int)
        let killedAt = Date()
        kill(pid_t(victimPid), SIGKILL)
        // Connections on the surviving worker keep working; those on the victim see an error.
        var survived = 0
        for c in clients { if (try? c.echo("after")) != nil { survived += 1 } }
        #expect(survived > 0 && survived < 16, "connections spread over both workers; \(survived) survived")
        #expect(eventually(seconds: 10) {
            let ws = (try? h.workers()) ?? []
            return ws.count == 2 && ws.allSatisfy { $0["state"] as? String == "serving" } && !ws.contains { $0["pid"] as? Int == victimPid }
        })
        print("figure: respawn after kill -9: \(Int(Date().timeIntervalSince(killedAt) * 1000)) ms until a new worker serves")
        let sup = try h.request("stats")["supervisor"] as? [String: Any] ?? [:]
        #expect(sup["respawns"] as? Int == 1)
        #expect((sup["last_error"] as? String ?? "").contains("killed by signal 9"))
        for _ in 0..<8 { try EchoClient(address).echo("fresh") }
        #expect(h.stop() == 0)
    }

    @Test func workerThatKeepsDyingIsNotRespawnedInATightLoop() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), workers: 1)
        try h.start()
        var pids: Set<Int> = []
        for _ in 0..<4 {
            var pid = 0
            #expect(eventually(seconds: 20) {
                pid = (try? h.workers().first { $0["state"] as? String == "serving" }?["pid"] as? Int) ?? 0
                return pid != 0 && !pids.contains(pid)
            })
            pids.insert(pid)
            kill(pid_t(pid), SIGKILL)
        }
        #expect(eventually { ((try? h.request("stats")["supervisor"] as? [String: Any])?["last_error"] as? String ?? "").contains("quick exits in a row") })
        let error = (try h.request("stats")["supervisor"] as? [String: Any])?["last_error"] as? String ?? ""
        #expect(error.contains("restarting in 0.4s") || error.contains("restarting in 0.8s"), "back-off grows: \(error)")
        print("last error: \(error)")
        #expect(h.stop() == 0)
    }

    @Test func reloadsUnderLoadLoseNothing() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), workers: 2, drain: "10s")
        try h.start()
        let address = try h.addresses("echo")[0]
        let load = ClientLoad(address)
        var latencies: [Double] = []
        for round in 0..<20 {
            try h.write(config: echoConfig(h), workers: [1, 2, 3][round % 3], drain: "10s")
            let begin = Date()
            let answer = try h.request("reload")
            latencies.append(Date().timeIntervalSince(begin) * 1000)
            #expect(answer["ok"] as? Bool == true, "reload \(round): \(answer)")
            #expect(answer["generation"] as? Int == round + 2)
            usleep(50_000)
        }
        let (operations, failures) = load.stop()
        latencies.sort()
        print("figure: 20 reloads under load: \(operations) client operations, \(failures.count) failed; reload latency median \(Int(latencies[10])) ms, max \(Int(latencies.last!)) ms")
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(operations > 100)
        #expect(eventually { ((try? h.workers()) ?? []).count == 2 })  // the last reload (round 19) asked for 2
        let sup = try h.request("stats")["supervisor"] as? [String: Any] ?? [:]
        #expect(sup["reloads_ok"] as? Int == 20)
        #expect(h.stop() == 0)
    }

    @Test func badConfigReloadFailsWithTheReasonAndTheOldGenerationServes() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        try h.start()
        let address = try h.addresses("echo")[0]
        try h.write(config: echoConfig(h) + "  - name: broken\n    protocol: echo\n    listen: [\"tcp://nope\"]\n")
        let (code, _) = try h.gnetctl(["reload", "-s", h.controlPath])
        #expect(code == 1)
        let answer = try h.request("reload")
        #expect(answer["ok"] as? Bool == false)
        let reason = answer["error"] as? String ?? ""
        #expect(reason.contains("gnetd.yaml:") && reason.contains("services[1].listen[0]") && reason.contains("invalid address"), "\(reason)")
        try EchoClient(address).echo("still here")
        let sup = try h.request("stats")["supervisor"] as? [String: Any] ?? [:]
        #expect(sup["generation"] as? Int == 1 && sup["reloads_failed"] as? Int == 2)
        // systemd hears READY=1 again with the failure in STATUS.
        #expect(h.waitFor(notification: "reload failed", timeout: 5) != nil)
        // SIGHUP with the same broken file: also refused, also still serving.
        kill(h.pid, SIGHUP)
        #expect(eventually { ((try? h.request("stats")["supervisor"] as? [String: Any])?["reloads_failed"] as? Int) == 3 })
        try EchoClient(address).echo("and still")
        #expect(h.stop() == 0)
    }

    @Test func gracefulStopLetsAnExchangeInFlightFinish() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), drain: "10s")
        try h.start()
        let address = try h.addresses("echo")[0]
        let slow = try EchoClient(address)
        try slow.echo("first half")
        h.process?.signal(SIGTERM)
        #expect(h.waitFor(notification: "STOPPING=1", timeout: 5) != nil)
        // The in-flight connection is still served while draining…
        usleep(200_000)
        try slow.echo("second half")
        // …new connections are not accepted any more…
        #expect((try? EchoClient(address, timeout: 2).echo("new")) == nil)
        // …and once it closes, gnetd exits 0.
        slow.close()
        #expect(h.process?.wait(timeout: 15) == 0)
    }

    @Test func secondSignalForcesTheStop() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), drain: "60s")
        try h.start()
        let address = try h.addresses("echo")[0]
        let held = try EchoClient(address)
        try held.echo("keep me")
        h.process?.signal(SIGTERM)
        usleep(200_000)
        h.process?.signal(SIGTERM)
        #expect(h.process?.wait(timeout: 10) != nil, "exits at once on the second signal despite a 60s drain")
    }

    @Test func otherUsersMayReadButNotChangeState() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        try h.start()
        let (statsCode, _) = try h.gnetctl(["stats", "-s", h.controlPath], asUser: "65534")
        #expect(statsCode == 0)
        let (reloadCode, _) = try h.gnetctl(["reload", "-s", h.controlPath], asUser: "65534")
        #expect(reloadCode == 1)
        let (stopCode, _) = try h.gnetctl(["stop", "-s", h.controlPath], asUser: "65534")
        #expect(stopCode == 1)
        #expect(try h.request("status")["state"] as? String == "serving")
        #expect((try h.request("stats")["supervisor"] as? [String: Any])?["generation"] as? Int == 1)
        #expect(h.stop() == 0)
    }

    /// Worker status channels share the supervisor's loop with control clients: the control
    /// idle timeout disconnects a silent client, never a worker's channel (silent for hours).
    @Test func silentControlClientsAreDroppedButWorkerChannelsAreNot() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h), controlIdle: "700ms")
        try h.start()
        let before = try h.workers().compactMap { $0["pid"] as? Int }.sorted()
        #expect(before.count == 2)
        for _ in 0..<2 {
            let client = try EchoClient(NetworkAddress(unixPath: h.controlPath), timeout: 10)
            let connectedAt = Date()
            var byte: UInt8 = 0
            #expect(recv(client.fd, &byte, 1, 0) == 0, "the daemon hung up on the silent client")
            let waited = Date().timeIntervalSince(connectedAt)
            #expect(waited >= 0.5 && waited < 5, "after the idle timeout (700ms): \(waited)s")
            client.close()
        }
        // The worker channels have now been silent for more than two idle timeouts.
        #expect(try h.workers().compactMap { $0["pid"] as? Int }.sorted() == before)
        #expect((try h.request("stats")["supervisor"] as? [String: Any])?["respawns"] as? Int == 0)
        try EchoClient(try h.addresses("echo")[0]).echo("still served")
        #expect(h.stop() == 0)
    }

    @Test func garbageOnTheControlSocketIsAnsweredAndHarmless() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        try h.start()
        for raw in ["hello\n", "{\"command\": 5}\n", "{\"command\": \"explode\"}\n", "[1,2,3]\n", "{\"cmd\":\"stats\"}\n", "\u{0}\u{1}\u{2}\n",
                    "{\"command\": \"stats\"\n"] {
            let line = try ControlClient.send(socket: h.controlPath, raw: raw, timeout: 10)
            #expect(line.hasPrefix("{\"error\":"), "\(raw.debugDescription) → \(line)")
        }
        let huge = String(repeating: "x", count: 100_000) + "\n"
        let line = try ControlClient.send(socket: h.controlPath, raw: huge, timeout: 10)
        #expect(line.contains("larger than"))
        // Random bytes, then a hang-up mid-line.
        for seed in 0..<20 {
            var x = UInt64(seed + 1) &* 0x9E3779B97F4A7C15
            var bytes = [UInt8]()
            for _ in 0..<200 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; bytes.append(UInt8(truncatingIfNeeded: x)) }
            _ = try? ControlClient.send(socket: h.controlPath, raw: String(decoding: bytes, as: UTF8.self) + "\n", timeout: 2)
        }
        #expect(try h.request("stats")["ok"] as? Bool == true)
        try EchoClient(try h.addresses("echo")[0]).echo("unharmed")
        #expect(h.stop() == 0)
    }

    /// Socket activation: systemd-socket-activate (systemd's own tool) binds a Unix socket,
    /// starts gnetd on the first connection with LISTEN_FDS/LISTEN_FDNAMES=echo, and gnetd serves
    /// the passed socket for the service named echo instead of binding its configured address.
    @Test func adoptsSocketsPassedBySystemd() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        let activated = h.dir + "/activated.sock"
        try h.start(prefix: ["systemd-socket-activate", "-l", activated, "--fdname=echo", "-E", "NOTIFY_SOCKET=\(h.dir)/notify.sock"],
                    waitReady: false)
        #expect(eventually { access(activated, F_OK) == 0 })
        let client = try EchoClient(NetworkAddress(unixPath: activated))  // this connection starts gnetd
        #expect(h.waitFor(notification: "READY=1", timeout: 30) != nil)
        try client.echo("activated")
        #expect(try h.addresses("echo").map(\.description) == ["unix://" + activated])
        client.close()
        #expect(h.stop() == 0)
        #expect(access(activated, F_OK) == 0, "a passed socket is systemd's: gnetd does not unlink it")
    }

    /// Started as root with `user: nobody`, workers serve as nobody on sockets the root
    /// supervisor bound.
    @Test func workersDropToTheConfiguredUser() throws {
        try #require(getuid() == 0, "needs root to switch users")
        let h = try DaemonHarness(config: "")
        try h.write(config: "user: nobody\n" + echoConfig(h))
        try h.start()
        try EchoClient(try h.addresses("echo")[0]).echo("as nobody")
        for w in try h.workers() {
            let pid = w["pid"] as? Int ?? 0
            let status = ProcFS.readFile("/proc/\(pid)/status") ?? ""
            let uidLine = status.split(separator: "\n").first { $0.hasPrefix("Uid:") } ?? ""
            #expect(uidLine.split(separator: "\t").dropFirst().allSatisfy { $0 == "65534" }, "worker \(pid): \(uidLine)")
        }
        #expect(h.stop() == 0)
    }

    /// With WATCHDOG_USEC set (as systemd does for WatchdogSec=), gnetd pings at half the interval.
    @Test func pingsTheWatchdog() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        try h.start(environment: ["WATCHDOG_USEC=200000"])
        #expect(h.waitFor(notification: "WATCHDOG=1", timeout: 5) != nil)
        #expect(h.waitFor(notification: "WATCHDOG=1", timeout: 5) != nil)
        #expect(h.stop() == 0)
    }

    @Test func pushAndFramedServices() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h) + """
          - name: ticker
            protocol: push
            listen: ["tcp://127.0.0.1:0"]
            interval: 100ms
            message: "tick"
          - name: frames
            protocol: framed
            listen: ["tcp://127.0.0.1:0"]
            codec: { type: length-field, length_field_length: 2, initial_bytes_to_strip: 2 }

        """)
        try h.start()
        let ticker = try EchoClient(try h.addresses("ticker")[0])
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64)
        while got.count < 15 {
            let n = recv(ticker.fd, &buf, 64, 0)
            try #require(n > 0, "push line expected")
            got += buf[0..<n]
        }
        #expect(String(decoding: got.prefix(15), as: UTF8.self) == "tick\ntick\ntick\n")
        let frames = try EchoClient(try h.addresses("frames")[0])
        let frame: [UInt8] = [0, 3, 0x61, 0x62, 0x63, 0, 0]   // "abc" and an empty frame
        #expect(send(frames.fd, frame, frame.count, 0) == frame.count)
        var back: [UInt8] = []
        while back.count < frame.count {
            let n = recv(frames.fd, &buf, 64, 0)
            try #require(n > 0)
            back += buf[0..<n]
        }
        #expect(back == frame)
        ticker.close(); frames.close()
        #expect(h.stop() == 0)
    }

    @Test func gnetctlReportsAnUnreachableDaemon() throws {
        let h = try DaemonHarness(config: "")
        let (code, _) = try h.gnetctl(["stats", "-s", h.dir + "/nothing.sock"])
        #expect(code == 3)
        let (usage, _) = try h.gnetctl(["frobnicate"])
        #expect(usage == 2)
        let (watch, _) = try h.gnetctl(["stats", "--watch", "-1"])
        #expect(watch == 2)
    }
}

func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
