#if canImport(Glibc)
import Glibc
#endif
import Gnet
import GnetDaemon
import GnetProcess
import Testing

/// One daemon per address: a second gnetd on an address the first serves is refused (naming the
/// address and, from /proc, the first one's pid) and leaves the first serving every request and
/// owning its socket files; stale socket files are reclaimed; a daemon never deletes a file it
/// did not create.
@Suite(.serialized, .timeLimit(.minutes(4))) struct AddressOwnershipTests {
    /// Starts a second gnetd on `services` (its own control socket unless `raw` names one) and
    /// waits for it to give up; returns its exit code and its log.
    static func refusedSecond(_ services: String, raw: Bool = false) throws -> (DaemonHarness, Int32?, String) {
        let second = try DaemonHarness(config: "")
        if raw { try second.write(raw: services) } else { try second.write(config: services) }
        try second.start(waitReady: false, captureLog: true)
        let code = second.process?.wait(timeout: 30)
        return (second, code, second.log())
    }

    /// A daemon serving echo on `listen`.
    static func first(_ listen: String, workers: Int = 2) throws -> DaemonHarness {
        let h = try DaemonHarness(config: "")
        try h.write(config: "services:\n  - name: echo\n    protocol: echo\n    listen: [\(listen.replacingOccurrences(of: "DIR", with: h.dir))]\n",
                    workers: workers)
        try h.start()
        return h
    }

    static func echoService(_ listen: String) -> String { "services:\n  - name: echo\n    protocol: echo\n    listen: [\"\(listen)\"]\n" }

    @Test func aSecondDaemonOnTheSameTCPPortIsRefusedAndTheFirstServesEverything() throws {
        let h = try Self.first("\"tcp://127.0.0.1:0\"")
        let address = try h.addresses("echo")[0]
        for taken in ["tcp://127.0.0.1:\(address.port)", "tcp://0.0.0.0:\(address.port)"] {
            let (second, code, log) = try Self.refusedSecond(Self.echoService(taken))
            #expect(code == 1, "\(log)")
            #expect(log.contains("\(taken) is in use by another process: pid \(h.pid) (gnetd)"), "\(log)")
            #expect(access(second.controlPath, F_OK) != 0, "the refused daemon removed its control socket")
        }
        for i in 0..<40 { try EchoClient(address).echo("request \(i)") }
        #expect(h.stop() == 0)
    }

    @Test func aSecondDaemonOnTheSameUDPPortIsRefused() throws {
        let h = try Self.first("\"udp://127.0.0.1:0\"")
        let address = try h.addresses("echo")[0]
        let (_, code, log) = try Self.refusedSecond(Self.echoService("udp://127.0.0.1:\(address.port)"))
        #expect(code == 1)
        #expect(log.contains("udp://127.0.0.1:\(address.port) is in use by another process: pid \(h.pid)"), "\(log)")
        for i in 0..<20 { #expect(try udpEcho(address, "datagram \(i)") == "datagram \(i)") }
        #expect(h.stop() == 0)
    }

    @Test func aSecondDaemonOnTheSameUnixPathIsRefusedAndTheFileStaysTheFirsts() throws {
        let h = try Self.first("\"unix://DIR/echo.sock\"")
        let path = h.dir + "/echo.sock"
        let (second, code, log) = try Self.refusedSecond(Self.echoService("unix://" + path))
        #expect(code == 1)
        #expect(log.contains("unix://\(path) is in use by another process: pid \(h.pid)"), "\(log)")
        #expect(access(second.controlPath, F_OK) != 0)
        #expect(access(path, F_OK) == 0)
        try EchoClient(NetworkAddress(unixPath: path)).echo("still the first's")
        #expect(h.stop() == 0)
        #expect(access(path, F_OK) != 0, "the first removes its own file")
    }

    @Test func aTakenControlSocketIsRefusedAndTheRefusedDaemonLeavesNoSocketFile() throws {
        let h = try Self.first("\"tcp://127.0.0.1:0\"")
        let other = try DaemonHarness(config: "")
        let mine = other.dir + "/echo.sock"
        let text = "control:\n  socket: \(h.controlPath)\nservices:\n  - name: echo\n    protocol: echo\n    listen: [\"unix://\(mine)\", \"tcp://127.0.0.1:0\"]\n"
        let fd = open(other.configPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        try #require(fd >= 0)
        #expect(text.withCString { Glibc.write(fd, $0, strlen($0)) } == text.utf8.count)
        close(fd)
        try other.start(waitReady: false, captureLog: true)
        #expect(other.process?.wait(timeout: 30) == 1)
        #expect(other.log().contains("the control socket \(h.controlPath) is in use by another process: pid \(h.pid)"), "\(other.log())")
        #expect(access(mine, F_OK) != 0 && access(other.controlPath, F_OK) != 0, "no socket file left by the refused daemon")
        #expect(try h.request("status")["state"] as? String == "serving")
        #expect(h.stop() == 0)
    }

    @Test func staleSocketFilesAreReclaimed() throws {
        let h = try DaemonHarness(config: "")
        let path = h.dir + "/echo.sock"
        for stale in [path, h.controlPath] { try leaveStaleSocket(stale) }
        try h.write(config: Self.echoService("unix://" + path))
        try h.start()
        try EchoClient(NetworkAddress(unixPath: path)).echo("reclaimed")
        #expect(h.stop() == 0)
    }

    @Test func aReloadOntoATakenAddressFailsWithTheReasonAndTheOldGenerationServes() throws {
        let h = try Self.first("\"tcp://0.0.0.0:0\"")
        let address = NetworkAddress(.tcp, host: "127.0.0.1", port: try h.addresses("echo")[0].port)
        let taken = try Listener.bind(NetworkAddress(parsing: "tcp://127.0.0.1:0"))
        defer { taken.close() }
        let takenPort = taken.boundNetworkAddress.port
        try h.write(config: Self.echoService("tcp://0.0.0.0:\(address.port)") + "  - name: more\n    protocol: echo\n    listen: [\"tcp://127.0.0.1:\(takenPort)\"]\n")
        let answer = try h.request("reload")
        #expect(answer["ok"] as? Bool == false)
        let reason = answer["error"] as? String ?? ""
        #expect(reason.contains("tcp://127.0.0.1:\(takenPort) is in use by another process: pid \(getpid())"), "\(reason)")
        #expect((try h.request("stats")["supervisor"] as? [String: Any])?["generation"] as? Int == 1)
        try EchoClient(address).echo("old generation")
        // A specific address under the wildcard this daemon already holds is its own, not taken.
        try h.write(config: Self.echoService("tcp://0.0.0.0:\(address.port)") + "  - name: more\n    protocol: echo\n    listen: [\"tcp://127.0.0.1:\(address.port)\"]\n")
        let own = try h.request("reload")
        #expect(own["ok"] as? Bool == true, "\(own)")
        for i in 0..<10 { try EchoClient(address).echo("after \(i)") }
        #expect(h.stop() == 0)
    }

    @Test func aFileThatReplacedASocketWhileTheDaemonRanIsNotDeleted() throws {
        let h = try Self.first("\"unix://DIR/echo.sock\"")
        let path = h.dir + "/echo.sock"
        #expect(rename(path, path + ".moved") == 0 && rename(h.controlPath, h.controlPath + ".moved") == 0)
        for replaced in [path, h.controlPath] {
            let fd = open(replaced, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            #expect(fd >= 0)
            close(fd)
        }
        #expect(h.stop() == 0)
        #expect(access(path, F_OK) == 0 && access(h.controlPath, F_OK) == 0, "the files another process put there stay")
    }
}

/// Binds a Unix socket at `path` and closes it: the file stays, nobody accepts on it (as after
/// a daemon was killed).
func leaveStaleSocket(_ path: String) throws {
    let l = try Listener.bind(NetworkAddress(unixPath: path))
    // Closing the descriptor alone (not `close()`, which removes the file) leaves the file behind.
    Glibc.close(l.fd)
    guard access(path, F_OK) == 0 else { throw TestError("no stale file at \(path)") }
}

/// Sends `text` in one datagram to `address` and returns the datagram that comes back.
func udpEcho(_ address: NetworkAddress, _ text: String) throws -> String {
    let target = try address.resolve()
    let fd = socket(target.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    guard target.withUnsafeSockaddr({ connect(fd, $0, $1) }) == 0 else { throw SystemError("connect", errno: errno) }
    let bytes = Array(text.utf8)
    guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw SystemError("send", errno: errno) }
    var buf = [UInt8](repeating: 0, count: 2048)
    let n = recv(fd, &buf, buf.count, 0)
    guard n > 0 else { throw SystemError("recv", errno: errno) }
    return String(decoding: buf[0..<n], as: UTF8.self)
}
