#if canImport(Glibc)
import Glibc
#endif
import CMallocCounter
import Dispatch
import Gnet
import GnetProcess
import Testing

@Suite(.timeLimit(.minutes(2))) struct FramingAndScaleTests {
    /// magic (2 B) + length (4 B, big endian) + body; echoes at most `batch` frames per call and
    /// wakes itself while whole frames are left, as gnet's framed-traffic test does.
    final class FrameEcho: EventHandler, @unchecked Sendable {
        let batch: Int
        let wakes = Shared(0)
        init(batch: Int) { self.batch = batch }

        func onTraffic(_ c: Conn) -> Action {
            var handled = 0
            while let size = Self.frameSize(c) {
                if handled == batch {
                    wakes.with { $0 += 1 }
                    c.wake()   // whole frames are still buffered: ask to be called again
                    return .none
                }
                guard let frame = try? c.next(size) else { return .close }
                guard (try? c.write(frame)) != nil else { return .close }
                handled += 1
            }
            return .none
        }

        static func frameSize(_ c: Conn) -> Int? {
            guard let head = try? c.peek(6) else { return nil }
            guard head[0] == 0xCA, head[1] == 0xFE else { return nil }
            let len = Int(head[2]) << 24 | Int(head[3]) << 16 | Int(head[4]) << 8 | Int(head[5])
            return c.inboundBuffered >= 6 + len ? 6 + len : nil
        }
    }

    static func frame(_ body: [UInt8]) -> [UInt8] {
        let n = body.count
        return [0xCA, 0xFE, UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + body
    }

    @Test(arguments: [1, 3])
    func framedTrafficWithBatchLimitAndWake(batch: Int) throws {
        let h = FrameEcho(batch: batch)
        var o = Options()
        o.writeBufferCap = 4 << 20
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let failures = Shared<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 4) { client in
                do {
                    let s = try TestSocket(e.addresses[0])
                    var sizes: [Int] = []
                    var size = 64
                    while size <= 1 << 20 { sizes.append(size); size *= 4 }
                    // Several frames in one write, so one read holds more than `batch` of them.
                    var burst: [UInt8] = []
                    var expected: [UInt8] = []
                    for (i, sz) in sizes.enumerated() {
                        let f = Self.frame(randomBytes(sz, seed: UInt64(client * 100 + i + 1)))
                        burst += f
                        expected += f
                    }
                    for small in 0..<8 { let f = Self.frame(randomBytes(64, seed: UInt64(small + 7))); burst += f; expected += f }
                    try s.send(burst)
                    let back = try s.receive(exactly: expected.count)
                    if back != expected { throw TestFailure("client \(client): frames differ") }
                } catch { failures.with { $0.append("\(error)") } }
            }
            #expect(failures.get == [])
        }
        #expect(h.wakes.get > 0, "the batch limit was hit and wake finished the job")
    }

    /// 10 000 connections held by one loop. The clients live in a separate Python process so
    /// each side has its own descriptor table (the hard limit here may be 20 000).
    static let manyClients = """
    import resource, socket, sys
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = [socket.create_connection((host, port), timeout=20) for _ in range(n)]
    print("connected", flush=True)
    sys.stdin.readline()
    for i in range(0, n, 97):
        msg = b"conn %d" % i
        socks[i].sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = socks[i].recv(100)
            if not chunk:
                sys.exit("EOF on %d" % i)
            got += chunk
        if got != msg:
            sys.exit("mismatch on %d" % i)
    print("echoed", flush=True)
    for s in socks:
        s.close()
    """

    @Test func tenThousandConnectionsOnOneLoop() throws {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        if lim.rlim_cur < lim.rlim_max {
            var raised = rlimit(rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        }
        try #require(lim.rlim_cur >= 10_500, "needs RLIMIT_NOFILE ≥ 10500 (have \(lim.rlim_cur))")
        let h = try EchoHandler()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let port = e.addresses[0].port
            let clients = try ChildProcess(["python3", "-c", Self.manyClients, "127.0.0.1", "\(port)", "10000"])
            #expect(clients.readLine(timeout: 60) == "connected")
            #expect(eventually(seconds: 30) { e.counters.connectionsOpen == 10_000 })
            clients.writeLine("go")
            #expect(clients.readLine(timeout: 60) == "echoed")
            #expect(clients.wait(timeout: 30) == 0)
            #expect(eventually(seconds: 30) { e.counters.connectionsOpen == 0 })
            #expect(h.closed.get == 10_000)
        }
    }

    /// Echo that samples the loop thread's allocation count after warm-up and at the end.
    final class CountingEcho: EventHandler, @unchecked Sendable {
        var messages = 0
        let warmup: Int, total: Int
        let samples = Shared<[UInt64]>([])
        let probe = Shared<UInt64>(0)
        init(warmup: Int, total: Int) {
            self.warmup = warmup; self.total = total
            samples.with { $0.reserveCapacity(4) }  // so taking a sample allocates nothing
        }
        func onOpen(_ c: Conn) -> Action {
            // The counter must see an allocation, or the zero below would prove nothing.
            let before = gnet_thread_allocations()
            let a = [UInt8](repeating: 1, count: Int(c.fd) + 100)
            let after = gnet_thread_allocations()
            probe.with { $0 = after - before + UInt64(a.count - a.count) }
            return .none
        }
        func onTraffic(_ c: Conn) -> Action {
            guard let v = try? c.next() else { return .none }
            _ = try? c.write(v)
            messages += 1
            if messages == warmup || messages == total {
                let n = gnet_thread_allocations()
                samples.with { $0.append(n) }
            }
            return .none
        }
    }

    @Test func steadyStateEchoAllocatesNothing() throws {
        let h = CountingEcho(warmup: 1000, total: 11_000)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            let msg = randomBytes(64, seed: 3)
            for _ in 0..<11_000 {
                try s.send(msg)
                _ = try s.receive(exactly: 64)
            }
        }
        #expect(h.probe.get >= 1, "the malloc counter works")
        let samples = h.samples.get
        try #require(samples.count == 2)
        #expect(samples[1] - samples[0] == 0, "allocations over 10 000 echoed messages")
    }
}
