#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet
import GnetProcess
import Testing

/// A copy of the built gnetd in the harness's directory, which tests replace with other builds
/// (the same code with another build ID) as a package upgrade would.
struct InstalledBinary {
    let path: String

    /// Copies the built gnetd to `dir/sbin/gnetd`.
    init(in dir: String) throws {
        mkdir(dir + "/sbin", 0o755)
        path = dir + "/sbin/gnetd"
        try run(["cp", DaemonHarness.binDir + "/gnetd", path])
    }

    /// Replaces the file (atomically: written aside, renamed over) with the built gnetd whose
    /// build ID's first byte is changed by `variant`; returns the new build ID's 12-character prefix.
    @discardableResult
    func upgrade(variant: UInt8) throws -> String {
        let note = path + ".note", aside = path + ".new", scratch = path + ".scratch"
        try run(["objcopy", "--dump-section", ".note.gnu.build-id=\(note)", DaemonHarness.binDir + "/gnetd", scratch])
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: note)))
        bytes[16] ^= variant  // the ID starts after the note's 16-byte header
        try Data(bytes).write(to: URL(fileURLWithPath: note))
        try run(["objcopy", "--update-section", ".note.gnu.build-id=\(note)", DaemonHarness.binDir + "/gnetd", aside])
        guard rename(aside, path) == 0 else { throw TestError("rename: errno \(errno)") }
        return bytes[16..<22].map { String(format: "%02x", $0) }.joined()
    }

    /// Replaces the file with `text` (mode `mode`), atomically.
    func replace(with text: String, mode: mode_t) throws {
        let aside = path + ".new"
        try Data(text.utf8).write(to: URL(fileURLWithPath: aside))
        chmod(aside, mode)
        guard rename(aside, path) == 0 else { throw TestError("rename: errno \(errno)") }
    }

    private func run(_ argv: [String]) throws {
        let p = try ChildProcess(argv, discardStderr: true)
        guard p.wait(timeout: 60) == 0 else { throw TestError("\(argv.joined(separator: " ")) failed") }
    }
}

/// A kept-alive HTTP client that sends requests one after another until stopped, opening a new
/// connection only when the server said `Connection: close`; any request without a whole
/// answer is a failure.
final class KeptAliveHTTPLoad: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true, done = false
    private(set) var answered = 0
    private(set) var failures: [String] = []

    init(_ address: NetworkAddress) {
        Thread { [self] in
            var c: EchoClient? = nil
            while isRunning {
                do {
                    if c == nil { c = try EchoClient(address) }
                    guard let conn = c else { continue }
                    let request = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
                    guard send(conn.fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { throw SystemError("send", errno: errno) }
                    var got = ""
                    var buf = [UInt8](repeating: 0, count: 4096)
                    while !got.hasSuffix("Hello, World!") {
                        let n = recv(conn.fd, &buf, buf.count, 0)
                        if n <= 0 { throw TestError("connection ended before the answer (\(got.count) bytes)") }
                        got += String(decoding: buf[0..<n], as: UTF8.self)
                    }
                    record(nil)
                    if got.contains("Connection: close") { c = nil }
                    usleep(20_000)
                } catch {
                    record("request \(answered + failures.count): \(error)")
                    c = nil
                }
            }
            lock.lock(); done = true; lock.unlock()
        }.start()
    }

    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }
    private func record(_ failure: String?) {
        lock.lock()
        if let failure { failures.append(failure) } else { answered += 1 }
        lock.unlock()
    }

    /// Stops the client and waits (bounded) for it: the requests answered and the failures.
    func stop() -> (answered: Int, failures: [String]) {
        lock.lock(); running = false; lock.unlock()
        for _ in 0..<2000 {
            lock.lock(); let d = done; lock.unlock()
            if d { break }
            usleep(5000)
        }
        lock.lock(); defer { lock.unlock() }
        return (answered, failures)
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ReexecTests {
    static let services = """
    services:
      - name: echo
        protocol: echo
        listen: ["tcp://127.0.0.1:0"]
      - name: web
        protocol: http
        listen: ["tcp://127.0.0.1:0"]
        keepalive_timeout: 60s
        routes:
          - { path: /, body: "Hello, World!" }

    """

    /// Starts gnetd from a copy of the binary; returns the harness and the copy.
    func started() throws -> (DaemonHarness, InstalledBinary) {
        let h = try DaemonHarness(config: Self.services)
        let binary = try InstalledBinary(in: h.dir)
        try h.start(captureLog: true, program: binary.path)
        return (h, binary)
    }

    func supervisorBuild(_ h: DaemonHarness) throws -> (build: String, execs: Int, generation: Int) {
        let s = try h.request("status")
        return (s["build"] as? String ?? "", s["exec_count"] as? Int ?? -1, s["generation"] as? Int ?? -1)
    }

    @Test func reloadAfterAnUpgradeRunsTheNewBinaryInPlace() throws {
        let (h, binary) = try started()
        let echo = try EchoClient(try h.addresses("echo")[0])
        try echo.echo("before")
        let web = KeptAliveHTTPLoad(try h.addresses("web")[0])
        let oldWorkers = Set(try h.workerPids())
        let first = try supervisorBuild(h)
        #expect(first.execs == 0 && first.generation == 1)
        #expect(try h.request("status")["binary"] as? String == binary.path)

        let newBuild = try binary.upgrade(variant: 0x5a)
        let answer = try h.request("reload")
        #expect(answer["ok"] as? Bool == true, "\(answer)\n\(h.log())")
        #expect(answer["generation"] as? Int == 2)
        #expect(h.waitFor(notification: "READY=1", timeout: 10) != nil)
        try echo.echo("answered by the old generation while it drains")
        let after = try supervisorBuild(h)
        #expect(after.build.hasPrefix(newBuild) && after.execs == 1 && after.generation == 2, "\(after) vs \(newBuild)")
        #expect(h.process.map { kill($0.pid, 0) == 0 } == true, "the same supervisor process")
        let details = try h.request("status")["worker_details"] as? [[String: Any]] ?? []
        let current = details.filter { $0["generation"] as? Int == 2 }
        #expect(current.count == 2 && current.allSatisfy { ($0["build"] as? String)?.hasPrefix(newBuild) == true }, "\(details)")
        #expect(details.filter { $0["generation"] as? Int == 1 }.allSatisfy { ($0["build"] as? String) == first.build })
        // The old workers drain: the idle echo connection is closed at its boundary, they exit.
        #expect(eventually(seconds: 15) { Set((try? h.workerPids(state: nil)) ?? []).isDisjoint(with: oldWorkers) }, "old workers exit")
        var byte: UInt8 = 0
        #expect(recv(echo.fd, &byte, 1, 0) == 0, "the drained echo connection is closed, not reset")
        let (status, text) = try h.gnetctl(["status", "-s", h.controlPath])
        #expect(status == 0 && text.contains("re-executed 1 time") && text.contains("build \(newBuild)"), "\(text)")

        // And again, to a third build, from the re-executed image.
        let third = try binary.upgrade(variant: 0x33)
        let again = try h.request("reload")
        #expect(again["ok"] as? Bool == true, "\(again)\n\(h.log())")
        let last = try supervisorBuild(h)
        #expect(last.build.hasPrefix(third) && last.execs == 2 && last.generation == 3, "\(last)")
        let (answered, failures) = web.stop()
        #expect(failures.isEmpty && answered > 10, "kept-alive HTTP requests: \(answered) answered, failures \(failures)")
        let stats = try h.request("stats")["supervisor"] as? [String: Any] ?? [:]
        #expect(stats["reloads_ok"] as? Int == 2)
        #expect(h.stop() == 0)
    }

    @Test func aReplacementThatCannotRunFailsTheReloadAndTheOldBinaryServes() throws {
        let (h, binary) = try started()
        let address = try h.addresses("echo")[0]
        let before = try supervisorBuild(h)
        let cases: [(String, () throws -> Void)] = [
            ("refuses", { try binary.replace(with: "#!/bin/sh\necho 'this gnetd refuses the configuration' >&2\nexit 1\n", mode: 0o755) }),
            // Passes --check but is not gnetd (it would die once executed): refused by --version.
            ("another program", { try binary.replace(with: "#!/bin/sh\necho impostor 9.9\nexit 0\n", mode: 0o755) }),
            ("not executable", { try binary.replace(with: "not a program\n", mode: 0o644) }),
            ("missing", { unlink(binary.path) }),
        ]
        for (name, replace) in cases {
            try replace()
            let answer = try h.request("reload")
            #expect(answer["ok"] as? Bool == false, "\(name): \(answer)")
            let reason = answer["error"] as? String ?? ""
            #expect(reason.contains(binary.path), "\(name): \(reason)")
            if name == "refuses" { #expect(reason.contains("this gnetd refuses"), "\(reason)") }
            #expect(try supervisorBuild(h) == before, "\(name)")
            try EchoClient(address).echo("still serving after \(name)")
        }
        #expect(h.process.map { kill($0.pid, 0) == 0 } == true)
        // The same refused file still there: the next reload re-reads the configuration with the
        // running binary instead of failing on it again.
        let generation = try supervisorBuild(h).generation
        #expect(try h.request("reload")["ok"] as? Bool == true)
        #expect(try supervisorBuild(h).generation == generation + 1 && (try supervisorBuild(h)).execs == 0)
        #expect(h.stop() == 0)
    }

    @Test func aReloadWithTheSameBinaryDoesNotReexecute() throws {
        let (h, _) = try started()
        #expect(try h.request("reload")["ok"] as? Bool == true)
        let s = try supervisorBuild(h)
        #expect(s.execs == 0 && s.generation == 2)
        #expect(!h.log().contains("re-executing"))
        #expect(h.stop() == 0)
    }

    @Test func garbageInTheHandoffVariableIsRefused() throws {
        let h = try DaemonHarness(config: Self.services)
        let junk = gnet_memfd("junk")
        _ = "{\"listeners\": 3".withCString { Glibc.write(junk, $0, strlen($0)) }
        _ = fcntl(junk, F_SETFD, 0)
        defer { close(junk) }
        // A handoff that parses but holds a pid no process can have.
        let huge = gnet_memfd("huge-pid")
        _ = """
            {"listeners":[],"passedSockets":[],"controlFD":5,"statsFD":6,"workers":[{"pid":99999999999,"index":0,"generation":1,\
            "statsSlot":0,"ready":true,"retiring":false,"started":0,"services":[]}],"generation":1,"workerCount":1,"reloadsOK":0,\
            "reloadsFailed":0,"respawns":0,"retired":{}}
            """.withCString { Glibc.write(huge, $0, strlen($0)) }
        _ = fcntl(huge, F_SETFD, 0)
        defer { close(huge) }
        for value in ["nonsense", "1000", "\(junk)", "\(huge)"] {
            try h.start(waitReady: false, environment: ["GNETD_REEXEC=\(value)"], captureLog: true)
            let code = h.process?.wait(timeout: 10)
            #expect(code == 1, "GNETD_REEXEC=\(value): exit \(String(describing: code))")
            #expect(h.log().contains("GNETD_REEXEC"), "\(h.log())")
            #expect(access(h.controlPath, F_OK) != 0, "nothing bound")
        }
    }
}
