#if canImport(Glibc)
import Glibc
#endif
import Gnet
import Testing

/// The Conn edge cases gnet asserts, checked inside real callbacks on real sockets.
@Suite(.timeLimit(.minutes(1))) struct ConnAPITests {
    final class EmptyInboundProbe: EventHandler, @unchecked Sendable {
        let results = Shared<[String: String]>([:])
        func onOpen(_ c: Conn) -> Action {
            var r: [String: String] = [:]
            let empty = UnsafeMutableRawBufferPointer(start: nil, count: 0)
            r["read0"] = describe { try c.read(into: empty) }
            let ten = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 1)
            defer { ten.deallocate() }
            r["read10"] = describe { try c.read(into: ten) }
            r["next10"] = describe { try c.next(10).count }
            r["peek10"] = describe { try c.peek(10).count }
            r["nextAll"] = describe { try c.next().count }
            r["peekAll"] = describe { try c.peek(-1).count }
            r["discard10"] = "\(c.discard(10))"
            r["discardAll"] = "\(c.discard())"
            r["keepaliveZero"] = describe { try c.setKeepAlive(idle: .zero, interval: .zero, count: 0); return 0 }
            r["keepaliveOK"] = describe { try c.setKeepAlive(idle: .seconds(10), interval: .seconds(5), count: 3); return 0 }
            r["nodelay"] = describe { try c.setNoDelay(false); return 0 }
            r["sendToOnStream"] = describe { try c.sendTo(UnsafeRawBufferPointer(start: nil, count: 0), address: nil) }
            r["linger"] = describe { try c.setLinger(nil); return 0 }
            r["buffers"] = describe { try c.setReadBuffer(65536); try c.setWriteBuffer(65536); return 0 }
            r["dup"] = describe { let fd = try c.dup(); close(fd); return fd > 2 ? 1 : 0 }
            r["remote"] = c.remoteAddress?.description.hasPrefix("127.0.0.1:") == true ? "ok" : "bad"
            r["local"] = c.localAddress?.port ?? 0 > 0 ? "ok" : "bad"
            results.with { $0 = r }
            return .close
        }
    }

    @Test func emptyInboundBufferBehavesLikeGnet() throws {
        let h = EmptyInboundProbe()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            #expect(s.sawEOF())
        }
        let r = h.results.get
        #expect(r["read0"] == "0")
        #expect(r["read10"] == "error: short buffer: not enough inbound bytes")
        #expect(r["next10"] == "error: short buffer: not enough inbound bytes")
        #expect(r["peek10"] == "error: short buffer: not enough inbound bytes")
        #expect(r["nextAll"] == "0")
        #expect(r["peekAll"] == "0")
        #expect(r["discard10"] == "0")
        #expect(r["discardAll"] == "0")
        #expect(r["keepaliveZero"]?.hasPrefix("error: invalid argument") == true)
        #expect(r["keepaliveOK"] == "0")
        #expect(r["nodelay"] == "0")
        #expect(r["sendToOnStream"]?.hasPrefix("error: unsupported operation") == true)
        #expect(r["linger"] == "0")
        #expect(r["buffers"] == "0")
        #expect(r["dup"] == "1")
        #expect(r["remote"] == "ok")
        #expect(r["local"] == "ok")
    }

    final class Tagger: EventHandler, @unchecked Sendable {
        let opened = Shared(0)
        func onOpen(_ c: Conn) -> Action {
            opened.with { $0 += 1 }
            c.context = Shared(opened.get)  // each connection carries its number
            return .none
        }
    }

    /// `forEachConnection` visits every open connection once, and may close the one it is given.
    @Test func forEachConnectionVisitsEveryOpenConnection() throws {
        let h = Tagger()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let clients = try (0..<5).map { _ in try TestSocket(e.addresses[0]) }
            #expect(eventually { h.opened.get == 5 })
            let seen = Shared<[Int]>([])
            try e.eventLoop.execute { loop in
                loop.forEachConnection { c in
                    let n = (c.context as? Shared<Int>)?.get ?? -1
                    seen.with { $0.append(n) }
                    if n % 2 == 0 { c.close() }  // closing the visited connection is allowed
                }
            }
            #expect(eventually { seen.get.count == 5 })
            #expect(seen.get.sorted() == [1, 2, 3, 4, 5])
            #expect(clients[1].sawEOF() && clients[3].sawEOF(), "connections 2 and 4 were closed")
            let left = Shared(-1)
            try e.eventLoop.execute { loop in
                var n = 0
                loop.forEachConnection { _ in n += 1 }
                left.with { $0 = n }
            }
            #expect(eventually { left.get == 3 })
        }
    }

    final class UnixProbe: EventHandler, @unchecked Sendable {
        let result = Shared("")
        func onOpen(_ c: Conn) -> Action {
            result.with { $0 = describe { try c.setKeepAlive(idle: .seconds(1), interval: .seconds(1), count: 1); return 0 } }
            return .close
        }
    }

    @Test func keepAliveOnUnixIsUnsupported() throws {
        let h = UnixProbe()
        let engine = try Engine(handler: h, listen: ["unix://" + tempSocketPath("ka")])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            #expect(s.sawEOF())
        }
        #expect(h.result.get.hasPrefix("error: unsupported operation"))
    }

    final class UDPProbe: EventHandler, @unchecked Sendable {
        let result = Shared<[String]>([])
        func onTraffic(_ c: Conn) -> Action {
            let data = Array((try? c.next()) ?? UnsafeRawBufferPointer(start: nil, count: 0))
            let noAddress = describe { try data.withUnsafeBytes { b in try Result { () throws(GnetError) in try c.sendTo(b, address: nil) }.get() } }
            let toSender = describe { try data.withUnsafeBytes { b in try Result { () throws(GnetError) in try c.sendTo(b, address: c.remoteAddress) }.get() } }
            result.with { $0 = [noAddress, toSender, c.isDatagram ? "datagram" : "stream", describe { try c.setNoDelay(true); return 0 }] }
            return .close  // ignored for UDP: the listener keeps serving
        }
    }

    @Test func udpSendToWithoutAddressIsInvalid() throws {
        let h = UDPProbe()
        let engine = try Engine(handler: h, listen: ["udp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            try s.send("ping")
            #expect(try s.receive(exactly: 4) == Array("ping".utf8))
            try s.send("again")
            #expect(try s.receive(exactly: 5) == Array("again".utf8))
        }
        let r = h.result.get
        #expect(r[0] == "error: invalid address \"no address to send to\"")
        #expect(r[1] == "5")
        #expect(r[2] == "datagram")
        #expect(r[3].hasPrefix("error: unsupported operation"))
    }

    /// Reads in odd-sized steps through every API so leftovers cross the read buffer / ring
    /// boundary; the bytes must come out exactly once, in order.
    final class Mixer: EventHandler {
        var step = 0
        func onTraffic(_ c: Conn) -> Action {
            while c.inboundBuffered > 0 {
                step += 1
                let n = min(c.inboundBuffered, step % 7 + 1)
                switch step % 4 {
                case 0:
                    guard let v = try? c.next(n) else { return .none }
                    _ = try? c.write(v)
                case 1:
                    guard let v = try? c.peek(n) else { return .none }
                    _ = try? c.write(v)
                    c.discard(n)
                case 2:
                    var tmp = [UInt8](repeating: 0, count: n)
                    let k = tmp.withUnsafeMutableBytes { (try? c.read(into: $0)) ?? 0 }
                    _ = try? c.write(Array(tmp[0..<k]))
                default:
                    _ = try? c.write(c.readBytes(n))
                }
                if step % 5 == 0 { c.wake(); return .none }  // leave the rest for the wake-up
            }
            return .none
        }
    }

    @Test func everyReadAPIPreservesTheByteStream() throws {
        let engine = try Engine(handler: Mixer(), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            let payload = randomBytes(300_000, seed: 42)
            var off = 0
            while off < payload.count {
                let n = min(payload.count - off, 1 + (off * 31) % 9000)
                try s.send(Array(payload[off..<(off + n)]))
                off += n
            }
            #expect(try s.receive(exactly: payload.count) == payload)
        }
    }
}

func describe<T>(_ body: () throws -> T) -> String {
    do { return "\(try body())" } catch { return "error: \(error)" }
}
