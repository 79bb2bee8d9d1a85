#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Gnet
import Testing

@Suite(.timeLimit(.minutes(1))) struct ClientAndProxyTests {
    /// Sends `farewell` and closes at once: the client must still read those final bytes.
    final class SayAndHangUp: EventHandler {
        func onOpen(_ c: Conn) -> Action {
            _ = try? c.write("final words")
            return .close
        }
    }

    /// Collects what dialled/enrolled connections receive.
    final class Collector: EventHandler, @unchecked Sendable {
        let received = Shared<[ConnID: [UInt8]]>([:])
        let closes = Shared<[ConnID: GnetError?]>([:])
        let opens = Shared(0)
        let greet: Bool
        init(greet: Bool = true) { self.greet = greet }
        func onOpen(_ c: Conn) -> Action {
            opens.with { $0 += 1 }
            if greet { _ = try? c.write("hi") }
            return .none
        }
        func onTraffic(_ c: Conn) -> Action {
            let b = c.readBytes()
            received.with { $0[c.id, default: []] += b }
            return .none
        }
        func onClose(_ c: Conn, error: GnetError?) -> Action {
            closes.with { $0[c.id] = error }
            return .none
        }
    }

    @Test(arguments: ["tcp", "unix"])
    func dialReadsTheLastBytesBeforeThePeerCloses(_ net: String) throws {
        let server = try Engine(handler: SayAndHangUp(), listen: [net == "tcp" ? "tcp://127.0.0.1:0" : "unix://" + tempSocketPath("dial")])
        let h = Collector(greet: false)  // unread bytes at the server would turn its close into a reset
        let client = try Engine(handler: h, listen: [])
        try withRunningEngine(server) { s in
            try withRunningEngine(client) { c in
                let started = Shared<Result<ConnID, GnetError>?>(nil)
                try c.dial(s.addresses[0].description) { r in started.with { $0 = r } }
                #expect(eventually { h.closes.get.count == 1 })
                guard case .success(let id)? = started.get else { Issue.record("dial did not start"); return }
                #expect(h.opens.get == 1)
                #expect(h.received.get[id] == Array("final words".utf8))
                #expect(h.closes.get[id] == .some(.endOfStream))
            }
        }
    }

    @Test func dialFailureIsReportedThroughOnClose() throws {
        // A port that was just free: bind, read it, close.
        let probe = try Listener.bind(NetworkAddress(parsing: "tcp://127.0.0.1:0"))
        let port = probe.boundAddress.port
        close(probe.fd)
        let h = Collector()
        let client = try Engine(handler: h, listen: [])
        try withRunningEngine(client) { c in
            try c.dial("tcp://127.0.0.1:\(port)")
            #expect(eventually { h.closes.get.count == 1 })
            let err = h.closes.get.values.first ?? nil
            if case .system(let se)? = err { #expect(se.errno == ECONNREFUSED) } else { Issue.record("expected ECONNREFUSED, got \(String(describing: err))") }
            #expect(h.opens.get == 0)
        }
        #expect(throws: GnetError.unsupportedProtocol("bogus://x")) { try client.dial("bogus://x") }
    }

    @Test func enrollAnExistingSocket() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[1]) }
        let h = Collector()
        let engine = try Engine(handler: h, listen: [])
        try withRunningEngine(engine) { e in
            let started = Shared<Result<ConnID, GnetError>?>(nil)
            try e.enroll(fd: fds[0]) { r in started.with { $0 = r } }
            var buf = [UInt8](repeating: 0, count: 2)
            #expect(read(fds[1], &buf, 2) == 2)
            #expect(buf == Array("hi".utf8))
            _ = write(fds[1], "peer", 4)
            #expect(eventually { h.received.get.values.first == Array("peer".utf8) })
            guard case .success = started.get else { Issue.record("enroll failed"); return }
        }
    }

    /// gnet's proxy scenario: a front listener, each front connection dialled through to one of
    /// 10 echo back ends (tcp, unix and udp) on the same loop, bytes piped both ways.
    final class Proxy: EventHandler, @unchecked Sendable {
        let backends: [NetworkAddress]
        var next = 0
        final class Peer { var other: ConnID?; let isBackend: Bool; init(_ o: ConnID?, backend: Bool) { other = o; isBackend = backend } }
        init(backends: [NetworkAddress]) { self.backends = backends }

        func onOpen(_ c: Conn) -> Action {
            if let peer = c.context as? Peer, peer.isBackend {
                // The back end came up: forward what the client may already have sent.
                if let front = peer.other { c.eventLoop.conn(front)?.wake() }
                return .none
            }
            let target = backends[next % backends.count]
            next += 1
            let frontPeer = Peer(nil, backend: false)
            c.context = frontPeer
            do {
                let backID = try c.eventLoop.dial(target, context: Peer(c.id, backend: true))
                frontPeer.other = backID
            } catch {
                return .close
            }
            return .none
        }

        func onTraffic(_ c: Conn) -> Action {
            guard let peer = c.context as? Peer, let otherID = peer.other, let other = c.eventLoop.conn(otherID) else {
                return .none  // back end not there yet: keep the bytes buffered, retry on wake
            }
            if !other.isOpen { return .none }  // still connecting: its onOpen wakes us
            guard let v = try? c.peek() else { return .none }
            if (try? other.write(v)) != nil { c.discard(v.count) } else { c.wake() }
            return .none
        }

        func onClose(_ c: Conn, error: GnetError?) -> Action {
            if let peer = c.context as? Peer, let otherID = peer.other, let other = c.eventLoop.conn(otherID) {
                other.close()
            }
            return .none
        }
    }

    @Test func proxyThroughTenBackends() throws {
        var listen: [String] = []
        for i in 0..<10 {
            switch i % 3 {
            case 0: listen.append("tcp://127.0.0.1:0")
            case 1: listen.append("unix://" + tempSocketPath("be\(i)"))
            default: listen.append("udp://127.0.0.1:0")
            }
        }
        let backend = try Engine(handler: try EchoHandler(), listen: listen)
        let streamBackends = backend.addresses.filter { $0.network != .udp }
        let proxy = try Engine(handler: Proxy(backends: streamBackends), listen: ["tcp://127.0.0.1:0"])
        let udpBackends = backend.addresses.filter { $0.network == .udp }
        try withRunningEngine(backend) { _ in
            try withRunningEngine(proxy) { p in
                let failures = Shared<[String]>([])
                DispatchQueue.concurrentPerform(iterations: 10) { i in
                    do {
                        let s = try TestSocket(p.addresses[0])
                        let data = randomBytes(200_000, seed: UInt64(i + 100))
                        var off = 0
                        while off < data.count {
                            let n = min(10_000, data.count - off)
                            try s.send(Array(data[off..<(off + n)]))
                            guard try s.receive(exactly: n) == Array(data[off..<(off + n)]) else { throw TestFailure("mismatch") }
                            off += n
                        }
                    } catch { failures.with { $0.append("\(i): \(error)") } }
                }
                #expect(failures.get == [])
                // UDP back ends answer dialled (connected) UDP sockets too.
                let h = Collector()
                let client = try Engine(handler: h, listen: [])
                try withRunningEngine(client) { c in
                    for u in udpBackends { try c.dial(u.description) }
                    #expect(eventually { h.received.get.count == udpBackends.count })
                    #expect(h.received.get.values.allSatisfy { $0 == Array("hi".utf8) })
                }
            }
        }
    }
}
