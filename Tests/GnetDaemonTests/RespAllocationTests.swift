#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import CMallocCounter
import Gnet
@testable import GnetDaemon
@testable import GnetResp
import Testing

/// gnet-resp's steady state, counted by the malloc interposer on the loop thread: a GET, a
/// PING and a SET that overwrites a value no larger than the one stored allocate nothing.
@Suite struct RespAllocationTests {
    /// Forwards to the service and samples the loop thread's allocation count at chosen
    /// requests (one request per read: the client waits for each answer).
    final class Probe: EventHandler, @unchecked Sendable {
        let service: RespService
        var requests = 0
        var marks: [Int: Int] = [:]  // request number → index in samples
        var samples: [UInt64]
        init(_ service: RespService, marks: [Int]) {
            self.service = service
            for (i, m) in marks.enumerated() { self.marks[m] = i }
            samples = Array(repeating: 0, count: marks.count)
        }
        func onBoot(_ engine: Engine) -> Action { service.onBoot(engine) }
        func onTraffic(_ c: Conn) -> Action {
            let action = service.onTraffic(c)
            requests += 1
            if let i = marks[requests] { samples[i] = gnet_thread_allocations() }
            return action
        }
    }

    static func roundTrip(_ fd: Int32, _ request: [UInt8], expect: Int) throws {
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { throw SystemError("send", errno: errno) }
        var got = 0
        var buf = [UInt8](repeating: 0, count: 4096)
        while got < expect {
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { throw SystemError("recv", errno: errno) }
            got += n
        }
    }

    /// Runs `probe` on an engine of its own for `body`, stopped and joined before returning.
    static func serve(_ probe: Probe, _ body: (NetworkAddress) throws -> Void) throws {
        let engine = try Engine(handler: probe, listen: ["tcp://127.0.0.1:0"])
        try engine.start()
        defer {
            engine.stop()
            engine.wait()
        }
        try body(engine.addresses[0])
    }

    static func command(_ words: String...) -> [UInt8] {
        var out = Array("*\(words.count)\r\n".utf8)
        for w in words { out += Array("$\(w.utf8.count)\r\n\(w)\r\n".utf8) }
        return out
    }

    @Test func getPingAndOverwritingSetAllocateNothing() throws {
        let context = ServiceContext(serviceName: "kv", workerIndex: 0, generation: 1, logger: StandardErrorLogger(level: .warning), counterBase: nil, counterNames: [])
        let value = String(repeating: "v", count: 100)
        // Warm-up: 1 000 of each, then 10 000 GETs, 10 000 PINGs and 10 000 SETs, sampled between.
        let warm = 1 + 3 * 1_000
        let probe = Probe(RespService(settings: RespSettings(), context: context), marks: [warm, warm + 10_000, warm + 20_000, warm + 30_000])
        try Self.serve(probe) { address in
            let client = try EchoClient(address)
            let set = Self.command("SET", "key:1", value), get = Self.command("GET", "key:1"), ping = Self.command("PING")
            let getReply = 6 + 100 + 2  // $100\r\n, the value, \r\n
            try Self.roundTrip(client.fd, set, expect: 5)
            for _ in 0..<1_000 {
                try Self.roundTrip(client.fd, get, expect: getReply)
                try Self.roundTrip(client.fd, ping, expect: 7)
                try Self.roundTrip(client.fd, set, expect: 5)
            }
            for _ in 0..<10_000 { try Self.roundTrip(client.fd, get, expect: getReply) }
            for _ in 0..<10_000 { try Self.roundTrip(client.fd, ping, expect: 7) }
            for _ in 0..<10_000 { try Self.roundTrip(client.fd, set, expect: 5) }
        }
        #expect(probe.requests == warm + 30_000)
        let s = probe.samples
        let (gets, pings, sets) = (s[1] - s[0], s[2] - s[1], s[3] - s[2])
        print("figure: gnet-resp heap allocations per 10 000 requests: GET \(gets), PING \(pings), SET over a stored value \(sets)")
        #expect(gets == 0)
        #expect(pings == 0)
        #expect(sets == 0)
    }

    @Test func theCounterSeesAnAllocationOnTheLoopThread() throws {
        // A new key allocates its entry's key and value: the counter above is not blind.
        let context = ServiceContext(serviceName: "kv", workerIndex: 0, generation: 1, logger: StandardErrorLogger(level: .warning), counterBase: nil, counterNames: [])
        let probe = Probe(RespService(settings: RespSettings(), context: context), marks: [1, 2])
        try Self.serve(probe) { address in
            let client = try EchoClient(address)
            try Self.roundTrip(client.fd, Self.command("PING"), expect: 7)
            try Self.roundTrip(client.fd, Self.command("SET", "fresh", "value"), expect: 5)
        }
        #expect(probe.samples[1] > probe.samples[0])
    }
}
