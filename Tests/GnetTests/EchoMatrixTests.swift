#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Gnet
import Testing

/// gnet's own echo matrix: {level-triggered, edge-triggered, edge-triggered with chunk,
/// reuseport} × {tcp, udp, unix} × {sync write, async write, async writev} × {1, 2, 4 loops},
/// 10 clients each; every echoed byte is compared.
@Suite(.timeLimit(.minutes(4))) struct EchoMatrixTests {
    enum IOMode: String, CaseIterable, Sendable { case levelTriggered, edgeTriggered, edgeTriggeredChunk, reusePort }
    enum Net: String, CaseIterable, Sendable { case tcp, udp, unix }

    struct Case: Sendable, CustomTestStringConvertible {
        let io: IOMode, net: Net, write: EchoWrite, loops: Int
        var testDescription: String { "\(io.rawValue)/\(net.rawValue)/\(write.rawValue)/\(loops) loops" }
    }

    static let cases: [Case] = [1, 2, 4].flatMap { loops in
        IOMode.allCases.flatMap { io in
            Net.allCases.flatMap { net in EchoWrite.allCases.map { Case(io: io, net: net, write: $0, loops: loops) } }
        }
    }

    @Test(arguments: cases)
    func echo(_ c: Case) throws {
        var options = Options()
        options.loops = c.loops
        switch c.io {
        case .levelTriggered: break
        case .edgeTriggered: options.edgeTriggered = true
        case .edgeTriggeredChunk: options.edgeTriggered = true; options.edgeTriggeredChunk = 4096
        case .reusePort: options.reusePort = true
        }
        let address: String
        switch c.net {
        case .tcp: address = "tcp://127.0.0.1:0"
        case .udp: address = "udp://127.0.0.1:0"
        case .unix: address = "unix://" + tempSocketPath("echo")
        }
        let handler = try EchoHandler(mode: c.write)
        let engine = try Engine(handler: handler, listen: [address], options: options)
        let bound = engine.addresses[0]
        let failures = Shared<[String]>([])
        try withRunningEngine(engine) { _ in
            DispatchQueue.concurrentPerform(iterations: 10) { client in
                do {
                    try Self.exercise(bound, datagram: c.net == .udp, seed: UInt64(client + 1) * 7919)
                } catch {
                    failures.with { $0.append("client \(client): \(error)") }
                }
            }
        }
        #expect(failures.get == [])
        if c.net != .udp {
            #expect(handler.opened.get == 10)
            #expect(handler.closed.get == 10)
        }
    }

    /// Streams: 1 MiB in random chunks (1 B … 64 KiB), each read back whole before the next.
    /// UDP: 256 datagrams of 1024 random bytes.
    static func exercise(_ address: NetworkAddress, datagram: Bool, seed: UInt64) throws {
        let s = try TestSocket(address)
        if datagram {
            for i in 0..<256 {
                let d = randomBytes(1024, seed: seed &+ UInt64(i))
                try s.send(d)
                let back = try s.receive(exactly: 1024)
                guard back == d else { throw TestFailure("datagram \(i) differs") }
            }
            return
        }
        let payload = randomBytes(1 << 20, seed: seed)
        var off = 0
        var x = seed
        while off < payload.count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            let n = min(payload.count - off, Int(x % 65536) + 1)
            let chunk = Array(payload[off..<(off + n)])
            try s.send(chunk)
            let back = try s.receive(exactly: n)
            guard back == chunk else { throw TestFailure("bytes differ at offset \(off)") }
            off += n
        }
    }
}
