#if canImport(Glibc)
import Glibc
#endif
import Gnet
import GnetProcess
import Testing

/// The benchmark binaries as a user runs them: real processes, real signals, bad flags.
/// Needs the products built (`swift build` before `swift test`, as the README says).
@Suite(.timeLimit(.minutes(2))) struct BenchToolTests {
    /// …/debug, where the test bundle and the products live side by side.
    static var binDir: String { ProcFS.executableDirectory() }

    @Test func echoServerServesAndStopsCleanlyOnSIGTERM() throws {
        let server = try ChildProcess([Self.binDir + "/gnet-bench", "serve", "--port", "0"])
        let line = try #require(server.readLine(timeout: 30))
        let port = try #require(Int(line.replacing("listening on ", with: "")))
        let s = try TestSocket(NetworkAddress(.tcp, host: "127.0.0.1", port: port))
        try s.send("ping")
        #expect(try s.receive(exactly: 4) == Array("ping".utf8))
        server.signal(SIGTERM)
        #expect(server.wait(timeout: 10) == 0)
        #expect(s.sawEOF(), "open connections are closed on stop")
    }

    @Test(arguments: [["frobnicate"], ["serve", "--port", "99999"], ["serve", "--bogus", "1"], ["load"], ["load", "--port", "x"],
                      ["compare", "--sizes", "0"], ["compare", "--duration", "-1"], ["serve", "--port"], []])
    func badFlagsExitWithUsage(_ args: [String]) throws {
        let p = try ChildProcess([Self.binDir + "/gnet-bench"] + args)
        #expect(p.wait(timeout: 10) == 2)
    }

    @Test func cEchoReferenceWorks() throws {
        let server = try ChildProcess([Self.binDir + "/gnet-c-echo", "0"])
        let line = try #require(server.readLine(timeout: 30))
        let port = try #require(Int(line.replacing("listening on ", with: "")))
        let s = try TestSocket(NetworkAddress(.tcp, host: "127.0.0.1", port: port))
        let data = randomBytes(200_000, seed: 9)
        try s.send(data)
        #expect(try s.receive(exactly: data.count) == data)
        server.signal(SIGTERM)
        #expect(server.wait(timeout: 10) == 0)
    }

    /// The short form of the benchmark comparison: both servers run, every byte verified.
    @Test func shortComparisonRuns() throws {
        let p = try ChildProcess([Self.binDir + "/gnet-bench", "compare", "--duration", "0.5", "--sizes", "64", "--connections", "20"])
        var rows: [String] = []
        while let line = p.readLine(timeout: 120) { if line.hasPrefix("| C ") || line.hasPrefix("| Gnet") { rows.append(line) } }
        #expect(p.wait(timeout: 30) == 0)
        #expect(rows.count == 2)
    }
}

/// Out of descriptors, a server must pause accepting instead of spinning on a listener that
/// stays readable, keep serving what it has, and recover once descriptors are free again.
@Suite(.timeLimit(.minutes(1))) struct DescriptorExhaustionTests {
    @Test func emfilePausesAcceptingWithoutSpinning() throws {
        let server = try ChildProcess(["prlimit", "--nofile=48", BenchToolTests.binDir + "/gnet-bench", "serve", "--port", "0"])
        let line = try #require(server.readLine(timeout: 30))
        let port = try #require(Int(line.replacing("listening on ", with: "")))
        let address = NetworkAddress(.tcp, host: "127.0.0.1", port: port)
        var clients: [TestSocket] = []
        for _ in 0..<80 { clients.append(try TestSocket(address, timeout: 5)) }   // the kernel queues them all
        // The first ones were accepted before the limit and are served.
        try clients[0].send("first")
        #expect(try clients[0].receive(exactly: 5) == Array("first".utf8))
        // Now the listener is readable but accept fails with EMFILE: the server must idle.
        let before = ProcFS.cpuNanoseconds(server.pid)
        usleep(1_000_000)
        let spent = Double(ProcFS.cpuNanoseconds(server.pid) - before) / 1e9
        #expect(spent < 0.25, "server burned \(spent)s of CPU in 1s while out of descriptors")
        // Free the descriptors; the server recovers and serves a new client.
        clients.removeAll()
        let fresh = try TestSocket(address, timeout: 10)
        try fresh.send("again")
        #expect(try fresh.receive(exactly: 5) == Array("again".utf8))
        server.signal(SIGTERM)
        #expect(server.wait(timeout: 10) == 0)
    }
}
