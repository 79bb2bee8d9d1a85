#if canImport(Glibc)
import Glibc
#endif
import Gnet
@testable import GnetDaemon
import GnetProcess
import Testing

/// gnetd's log lines: under systemd's journal (standard error is the stream JOURNAL_STREAM
/// names) each starts with its syslog priority and has no timestamp; otherwise the human format
/// with a timestamp. One event is one line.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DaemonLogTests {
    /// Creates the file gnetd's standard error will go to (the harness opens it without
    /// replacing it) and returns its `DEVICE:INODE`, as systemd sets JOURNAL_STREAM.
    static func streamIdentity(_ path: String) throws -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError("fstat", errno: errno) }
        return "\(st.st_dev):\(st.st_ino)"
    }

    /// The first line of the log containing `text` (waiting for it).
    static func line(_ h: DaemonHarness, containing text: String) -> String? {
        var found: String?
        _ = eventually(seconds: 15) {
            found = h.log().split(separator: "\n").first { $0.contains(text) }.map(String.init)
            return found != nil
        }
        return found
    }

    static let brokenService = "  - name: broken\n    protocol: echo\n    listen: [\"tcp://nope\"]\n"

    @Test func underTheJournalLinesStartWithTheirPriorityAndCarryNoTimestamp() throws {
        try #require(getuid() == 0, "needs root: the worker that fails runs as nobody")
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        let stream = try Self.streamIdentity(h.dir + "/stderr.log")
        try h.start(environment: ["JOURNAL_STREAM=\(stream)"], captureLog: true)
        let supervisor = "gnetd[supervisor pid \(h.pid)]: "
        // A failed reload (a broken configuration) is an error.
        try h.write(config: echoConfig(h) + Self.brokenService)
        #expect(try h.request("reload")["ok"] as? Bool == false)
        let reload = Self.line(h, containing: "reload failed")
        #expect(reload?.hasPrefix("<3>" + supervisor + "error: ") == true, "\(reload ?? h.log())")
        // A worker killed by a signal is an error; its respawn a warning.
        let victim = try #require(try h.workerPids().first)
        kill(pid_t(victim), SIGKILL)
        let killed = Self.line(h, containing: "was killed by signal 9")
        #expect(killed?.hasPrefix("<3>" + supervisor + "error: worker ") == true, "\(killed ?? h.log())")
        let respawn = Self.line(h, containing: "respawning worker")
        #expect(respawn?.hasPrefix("<4>" + supervisor + "warning: ") == true, "\(respawn ?? h.log())")
        // Workers inherit the stream and the variable: a worker of generation 2 that cannot open
        // its root says so as an error, and says who it is.
        let locked = h.dir + "/locked"
        mkdir(locked, 0o700)
        mkdir(locked + "/www", 0o755)
        try h.write(config: "user: nobody\nservices:\n  - name: web\n    protocol: http\n    listen: [\"tcp://127.0.0.1:0\"]\n"
                    + "    routes:\n      - { path: /, root: \(locked)/www }\n", workers: 1)
        #expect(try h.request("reload")["ok"] as? Bool == false)
        let worker = Self.line(h, containing: "cannot serve: ")
        #expect(worker?.hasPrefix("<3>gnetd[worker 0 gen 2 pid ") == true, "\(worker ?? h.log())")
        let starting = Self.line(h, containing: "starting 2 workers")
        #expect(starting?.hasPrefix("<6>" + supervisor + "info: ") == true, "\(starting ?? h.log())")
        #expect(h.stop() == 0)
        let lines = h.log().split(separator: "\n")
        let unprefixed = lines.filter { $0.prefixMatch(of: /<[0-7]>gnetd\[/) == nil }
        #expect(unprefixed.isEmpty, "every line has its priority and no timestamp: \(unprefixed.prefix(3))")
    }

    @Test func elsewhereLinesAreForPeopleWithATimestamp() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: echoConfig(h))
        // Standard error is a file, not the stream the variable names (as for a daemon started
        // from a systemd unit with its output redirected, or by hand from such a shell).
        let elsewhere = try Self.streamIdentity(h.dir + "/other.log")
        try h.start(environment: ["JOURNAL_STREAM=\(elsewhere)"], captureLog: true)
        try h.write(config: echoConfig(h) + Self.brokenService)
        #expect(try h.request("reload")["ok"] as? Bool == false)
        let reload = try #require(Self.line(h, containing: "reload failed"))
        #expect(reload.prefixMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} gnetd\[supervisor pid \d+\]: error: reload failed: /#) != nil,
                "\(reload)")
        #expect(h.stop() == 0)
        #expect(!h.log().contains("<3>") && !h.log().contains("<6>"))
    }

    /// A failed start whose reason holds a newline (an address from the file): one line, an error.
    @Test func aMessageWithANewlineStaysOneLine() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: "services:\n  - name: echo\n    protocol: echo\n    listen: [\"tcp://no\\nsuch:1\"]\n")
        let stream = try Self.streamIdentity(h.dir + "/stderr.log")
        try h.start(waitReady: false, environment: ["JOURNAL_STREAM=\(stream)"], captureLog: true)
        #expect(h.process?.wait(timeout: 30) == 2)
        let log = h.log()
        #expect(log.split(separator: "\n").count == 1 && log.hasSuffix("\n"), "\(log)")
        #expect(log.hasPrefix("<3>gnetd[supervisor pid ") && log.contains("error: cannot start: ") && log.contains("tcp://no\\nsuch:1"), "\(log)")
    }

    @Test func oneEventIsOneLine() {
        let text = LogLine.format(.error, "first\nsecond\r\nthird", journal: true, time: nil)
        let line = String(decoding: text, as: UTF8.self)
        #expect(line.hasPrefix("<3>gnetd[") && line.hasSuffix("error: first\\nsecond\\r\\nthird\n"), "\(line)")
        #expect(text.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        let human = String(decoding: LogLine.format(.debug, "x", journal: false, time: "2026-11-30T12:00:00+0000"), as: UTF8.self)
        #expect(human.hasPrefix("2026-11-30T12:00:00+0000 gnetd[") && human.hasSuffix("]: debug: x\n"), "\(human)")
        // Cut to one atomic pipe write, never inside a UTF-8 character.
        let long = LogLine.format(.info, String(repeating: "é\n", count: 5000), journal: true, time: nil)
        #expect(long.count <= LogLine.maxBytes && long.last == UInt8(ascii: "\n"))
        #expect(String(validating: long, as: UTF8.self)?.hasSuffix(" …\n") == true)
    }

    @Test func theJournalStreamIsRecognisedByDeviceAndInode() throws {
        let path = "/tmp/gnetd-journal-\(getpid())"
        defer { unlink(path) }
        let identity = try Self.streamIdentity(path)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        #expect(JournalStream.matches(identity, fd: fd))
        #expect(!JournalStream.matches(identity + "1", fd: fd))
        #expect(!JournalStream.matches("garbage", fd: fd))
    }
}
