#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet
import GnetDaemon
import GnetProcess
import Testing

/// gnet-resp, the daemon built on GnetDaemon's public API, with Redis's own clients.
@Suite(.serialized, .timeLimit(.minutes(4))) struct RespTests {
    static func respConfig(_ extra: String = "") -> String {
        "services:\n  - name: kv\n    protocol: resp\n    listen: [\"tcp://127.0.0.1:0\"]\n" + extra
    }

    /// Runs redis-cli with `script` on its standard input (one connection); its output.
    static func redisCLI(_ target: [String], _ script: String) throws -> String {
        let path = "/tmp/gnet-resp-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let p = try ChildProcess(["sh", "-c", "exec redis-cli " + target.joined(separator: " ") + " < " + path])
        let out = p.readAll(timeout: 30)
        _ = p.wait(timeout: 30)
        return out
    }

    /// A redis-server of Debian's on a Unix socket in `dir` (no TCP port, no persistence),
    /// stopped by the caller.
    static func redisServer(_ dir: String) throws -> (ChildProcess, [String]) {
        let socket = dir + "/redis.sock"
        let p = try ChildProcess(["redis-server", "--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no",
                                  "--dir", dir], discardStderr: true)
        #expect(eventually { (try? redisCLI(["-s", socket], "PING\n")) == "PONG" }, "redis-server started")
        return (p, ["-s", socket])
    }

    @Test func everyCommandAnswersAsRedisDoes() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: Self.respConfig(), workers: 1)  // one keyspace: every connection sees the same keys
        try h.start(program: "gnet-resp")
        let port = try h.addresses("kv")[0].port
        let (redis, redisTarget) = try Self.redisServer(h.dir)
        defer { redis.stop() }
        // Every command, its options, arities, errors and edge values, through one connection
        // each: the answers must be redis-server's, byte for byte as redis-cli prints them.
        let script = """
            PING
            PING hello
            ECHO
            ECHO "two words"
            SET a 1
            GET a
            INCR a
            INCRBY a 10
            INCRBY a x
            DECRBY a 5
            DECR a
            SET s hello
            INCR s
            SET b v EX 0
            SET b v EX 10 PX 100
            SET b v NX XX
            SET b v XX
            SET b v NX
            SET b w NX
            GET b
            SET b v2 XX EX 50
            TTL b
            TTL nope
            PTTL nope
            EXPIRE b 100
            TTL b
            EXPIRE nope 100
            PERSIST b
            EXISTS a b nope a
            DEL a b nope
            MSET x 1 y
            MSET x 1 y 2
            MGET x y nope
            DBSIZE
            foo bar "baz qux"
            GET
            SET k
            SET big 9223372036854775807
            INCR big
            DECRBY big -9223372036854775808
            INCRBY nothere 9223372036854775807
            INCR nothere
            SET lz 007
            INCR lz
            SET neg -5
            INCRBY neg -3
            EXPIRE x abc
            EXPIRE x -1
            GET x
            SELECT 0
            FLUSHDB
            DBSIZE
            QUIT
            """
        let ours = try Self.redisCLI(["-p", "\(port)"], script + "\n")
        let theirs = try Self.redisCLI(redisTarget, script + "\n")
        #expect(ours == theirs, "gnet-resp:\n\(ours)\n---- redis-server:\n\(theirs)")
        // Expiry seen from a fresh connection: set with PX 20, gone soon after.
        #expect(try Self.redisCLI(["-p", "\(port)"], "SET t v PX 20\n") == "OK")
        #expect(eventually(seconds: 3) { (try? Self.redisCLI(["-p", "\(port)"], "EXISTS t\n")) == "0" })
        #expect(h.stop() == 0)
    }

    @Test func hostileRequestsGetAnErrorAndACloseAndNothingElseIsLost() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: Self.respConfig("    max_value_size: 64KiB\n"), workers: 1)
        try h.start(program: "gnet-resp")
        let address = try h.addresses("kv")[0]
        let bystander = try EchoClient(address, timeout: 5)
        func exchange(_ bytes: [UInt8]) throws -> String {
            let c = try EchoClient(address, timeout: 5)
            _ = bytes.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            shutdown(c.fd, Int32(SHUT_WR))  // a request left unfinished ends with the stream
            return readUntilClosed(c.fd)
        }
        // Announced sizes are refused before anything is allocated for them.
        #expect(try exchange(Array("*1\r\n$4294967296\r\n".utf8)) == "-ERR Protocol error: invalid bulk length\r\n")
        #expect(try exchange(Array("*2\r\n$3\r\nSET\r\n$65537\r\n".utf8)) == "-ERR Protocol error: invalid bulk length\r\n")
        #expect(try exchange(Array("*2000000\r\n".utf8)) == "-ERR Protocol error: invalid multibulk length\r\n")
        #expect(try exchange(Array("*1\r\nx".utf8)) == "-ERR Protocol error: expected '$', got 'x'\r\n")
        #expect(try exchange([UInt8](repeating: UInt8(ascii: "a"), count: 70_000)) == "-ERR Protocol error: too big inline request\r\n")
        // Garbage: every byte string is answered or refused, the worker lives, and the
        // bystander's connection is served throughout.
        var x: UInt64 = 0x9E3779B97F4A7C15
        for _ in 0..<200 {
            var junk: [UInt8] = []
            for _ in 0..<Int(x % 300) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                junk.append(["*", "$", "\r", "\n", "1", "-", "9", " ", "G", "E", "T"].map { UInt8(ascii: $0) }[Int(x % 11)] ^ (x % 97 == 0 ? 0xFF : 0))
            }
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            _ = try? exchange(junk + Array("\r\nQUIT\r\n".utf8))
        }
        let ping = Array("*1\r\n$4\r\nPING\r\n".utf8)
        _ = ping.withUnsafeBytes { send(bystander.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply = [UInt8](repeating: 0, count: 7)
        #expect(recv(bystander.fd, &reply, 7, Int32(MSG_WAITALL)) == 7 && reply == Array("+PONG\r\n".utf8))
        #expect((try h.request("stats")["supervisor"] as? [String: Any])?["respawns"] as? Int == 0, "no worker died")
        bystander.close()  // (an open connection would hold the stop to the drain timeout)
        // Pipelined, in order: 1000 SETs and GETs in one write.
        var batch = ""
        for i in 0..<1000 { batch += "*3\r\n$3\r\nSET\r\n$\(String(i).count + 1)\r\nk\(i)\r\n$\(String(i).count)\r\n\(i)\r\n*2\r\n$3\r\nGET\r\n$\(String(i).count + 1)\r\nk\(i)\r\n" }
        let answers = try exchange(Array((batch + "*1\r\n$4\r\nQUIT\r\n").utf8))
        let expected = (0..<1000).map { "+OK\r\n$\(String($0).count)\r\n\($0)\r\n" }.joined() + "+OK\r\n"
        #expect(answers == expected)
        #expect(h.stop() == 0)
    }

    @Test func redisBenchmarkRunsCleanAndAReloadUnderItFailsNothing() throws {
        let h = try DaemonHarness(config: "")
        try h.write(config: Self.respConfig(), workers: 2, drain: "60s")
        try h.start(program: "gnet-resp")
        let port = try h.addresses("kv")[0].port
        for depth in [1, 16] {
            let b = try ChildProcess(["redis-benchmark", "-p", "\(port)", "-c", "20", "-n", "20000", "-P", "\(depth)",
                                      "-t", "ping,set,get,incr,mset", "-q", "--csv"], discardStderr: true)
            let out = b.readAll(timeout: 120)
            #expect(b.wait(timeout: 120) == 0)
            for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"] {
                #expect(out.contains("\"\(test)\","), "-P \(depth): \(test) missing from \(out)")
            }
            #expect(!out.lowercased().contains("error"), "\(out)")
        }
        // A reload in the middle of a benchmark: its connections stay with the old workers, which
        // drain, while new connections go to the new generation; not one request fails.
        let b = try ChildProcess(["redis-benchmark", "-p", "\(port)", "-c", "20", "-n", "300000", "-P", "1", "-t", "set,get", "-q", "--csv"],
                                 discardStderr: true)
        usleep(500_000)
        for workers in [1, 2, 1] {
            try h.write(config: Self.respConfig(), workers: workers, drain: "60s")
            #expect(try h.request("reload")["ok"] as? Bool == true)
            usleep(200_000)
        }
        let out = b.readAll(timeout: 120)
        #expect(b.wait(timeout: 120) == 0, "\(out)")
        #expect(out.contains("\"SET\",") && out.contains("\"GET\","), "\(out)")
        // The counters reached the stats page: every worker's commands, those that exited included.
        let totals = try h.request("stats")["totals"] as? [String: Any] ?? [:]
        let commands = ((totals["services"] as? [String: Any])?["kv"] as? [String: Any])?["commands"] as? Int ?? 0
        #expect(commands >= 600_000 + 2 * 20_000, "commands counted: \(commands)")
        let (code, table) = try h.gnetctl(["stats", "-s", h.controlPath])
        #expect(code == 0 && table.contains("service kv: active ") && table.contains(";  commands "), "\(table)")
        #expect(h.stop() == 0)
    }

    @Test func itsOwnSettingsAreCheckedWithTheirLocation() throws {
        let h = try DaemonHarness(config: "")
        for (extra, expected) in [("    max_value_size: 1GiB\n", "8:21: services[0].max_value_size: must be 1 to 512MiB, not 1GiB"),
                                  ("    max_vale_size: 1KiB\n", "8:5: services[0].max_vale_size: unknown key \"max_vale_size\""),
                                  ("    max_value_size: lots\n", "8:21: services[0].max_value_size: invalid size \"lots\"")] {
            try h.write(raw: Self.respConfig(extra))
            let log = h.dir + "/check.err"
            let p = try ChildProcess([DaemonHarness.binDir + "/gnet-resp", "--check", "--config", h.configPath], stderrPath: log)
            #expect(p.wait(timeout: 30) == 2)
            let message = ProcFS.readFile(log) ?? ""
            #expect(message.contains(h.configPath + ":") && message.contains(expected), "\(message)")
        }
        let version = try ChildProcess([DaemonHarness.binDir + "/gnet-resp", "--version"])
        #expect(version.readAll(timeout: 10).hasPrefix("gnet-resp 0.1.0 (revision "))
    }
}
