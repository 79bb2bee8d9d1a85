#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import Testing

/// Several loops in one engine: connections spread by the kernel or by a balancer, callbacks
/// on every loop, `onBoot`/`onShutdown` once, stop with connections on every loop, UDP.
@Suite(.timeLimit(.minutes(2))) struct MulticoreTests {
    /// Counts opens and closes per loop (by the loop's index in `engine.loops`).
    final class Census: EventHandler, @unchecked Sendable {
        let opened = Shared<[Int: Int]>([:])
        let open = Shared<[Int: Int]>([:])
        let closed = Shared<Int>(0)
        let boots = Shared<Int>(0)
        let shutdowns = Shared<Int>(0)
        let threads = Shared<Set<UInt>>([])
        /// The engine's loops by identity (not held: the loops hold this handler).
        var loops: [ObjectIdentifier] = []
        func index(_ c: Conn) -> Int { loops.firstIndex(of: ObjectIdentifier(c.eventLoop)) ?? -1 }
        func onBoot(_ engine: Engine) -> Action {
            boots.with { $0 += 1 }
            return .none
        }
        func onOpen(_ c: Conn) -> Action {
            let k = index(c)
            opened.with { $0[k, default: 0] += 1 }
            open.with { $0[k, default: 0] += 1 }
            threads.with { _ = $0.insert(UInt(pthread_self())) }
            return .none
        }
        func onTraffic(_ c: Conn) -> Action {
            do {
                try c.withInbound { a, b throws(GnetError) in try c.write(a, b) }
            } catch { return .close }
            return .none
        }
        func onClose(_ c: Conn, error: GnetError?) -> Action {
            if !c.isDatagram {
                let k = index(c)
                open.with { $0[k, default: 0] -= 1 }
                closed.with { $0 += 1 }
            }
            return .none
        }
        func onShutdown(_ engine: Engine) { shutdowns.with { $0 += 1 } }
    }

    /// A connected TCP socket, bound first to `source` when given (any 127.0.0.0/8 address is
    /// local, so clients can come from many addresses).
    static func connect(_ address: NetworkAddress, from source: String? = nil) throws -> Int32 {
        let target = try address.resolve()
        let fd = socket(target.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        if let source {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &sin.sin_addr)
            let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard rc == 0 else { let e = errno; close(fd); throw SystemError("bind", errno: e) }
        }
        guard target.withUnsafeSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 else {
            let e = errno; close(fd); throw SystemError("connect", errno: e)
        }
        return fd
    }

    static func engine(_ h: Census, loops: Int, balancing: LoadBalancing, address: String = "tcp://127.0.0.1:0") throws -> Engine {
        var o = Options()
        o.loops = loops
        o.loadBalancing = balancing
        let e = try Engine(handler: h, listen: [address], options: o)
        h.loops = e.loops.map(ObjectIdentifier.init)
        return e
    }

    /// Opens `count` connections (from `sources` in turn, if any) and waits until all are open.
    static func openMany(_ e: Engine, _ h: Census, _ count: Int, sources: [String] = []) throws -> [Int32] {
        let before = h.opened.get.values.reduce(0, +)
        var fds: [Int32] = []
        for i in 0..<count {
            fds.append(try connect(e.addresses[0], from: sources.isEmpty ? nil : sources[i % sources.count]))
        }
        #expect(eventually { h.opened.get.values.reduce(0, +) == before + count }, "\(h.opened.get)")
        return fds
    }

    @Test func theKernelSpreadsOverOneSocketPerLoop() throws {
        let h = Census()
        let e = try Self.engine(h, loops: 2, balancing: .kernel)
        #expect(e.loops.count == 2)
        try withRunningEngine(e) { e in
            let fds = try Self.openMany(e, h, 1000)
            defer { for fd in fds { close(fd) } }
            let per = h.opened.get
            print("figure: kernel balancing over 2 loops, 1000 connections: \(per.sorted { $0.key < $1.key })")
            for k in 0..<2 { #expect((350...650).contains(per[k, default: 0]), "loop \(k): \(per)") }
            #expect(h.threads.get.count == 2, "callbacks ran on two threads")
        }
    }

    @Test func roundRobinIsExact() throws {
        let h = Census()
        let e = try Self.engine(h, loops: 4, balancing: .roundRobin)
        try withRunningEngine(e) { e in
            let fds = try Self.openMany(e, h, 1000)
            defer { for fd in fds { close(fd) } }
            #expect(h.opened.get == [0: 250, 1: 250, 2: 250, 3: 250])
        }
    }

    @Test func leastConnectionsFillsTheEmptiestLoop() throws {
        let h = Census()
        let e = try Self.engine(h, loops: 4, balancing: .leastConnections)
        try withRunningEngine(e) { e in
            var fds = try Self.openMany(e, h, 1000)
            defer { for fd in fds { close(fd) } }
            let per = h.opened.get
            print("figure: least-connections over 4 loops, 1000 connections: \(per.sorted { $0.key < $1.key })")
            for k in 0..<4 { #expect((240...260).contains(per[k, default: 0]), "loop \(k): \(per)") }
            // Empty loop 1 (close its clients, found by asking each connection's loop), then
            // 200 new connections go mostly to it.
            var onLoop1: Set<Int32> = []
            let ids = Shared<[Int32]>([])
            try e.loops[1].execute { loop in loop.forEachConnection { c in if let p = c.remoteAddress { ids.with { $0.append(Int32(p.port)) } } } }
            #expect(eventually { ids.get.count == per[1, default: 0] })
            let ports = Set(ids.get)
            for fd in fds {
                if let local = Self.localPort(fd), ports.contains(local) { onLoop1.insert(fd); close(fd) }
            }
            fds.removeAll { onLoop1.contains($0) }
            #expect(eventually { h.open.get[1, default: -1] == 0 }, "\(h.open.get)")
            let before = h.opened.get
            fds += try Self.openMany(e, h, 200)
            let gained = h.opened.get[1, default: 0] - before[1, default: 0]
            print("figure: least-connections after emptying loop 1: \(gained) of 200 new connections went to it")
            #expect(gained >= 190)
        }
    }

    static func localPort(_ fd: Int32) -> Int32? {
        var sin = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return rc == 0 ? Int32(UInt16(bigEndian: sin.sin_port)) : nil
    }

    @Test func sourceAddressHashKeepsEachClientHostOnOneLoop() throws {
        let h = Census()
        let e = try Self.engine(h, loops: 2, balancing: .sourceAddressHash)
        let sources = (1...50).map { "127.0.0.\($0)" }
        let loopOfSource = Shared<[String: Set<Int>]>([:])
        try withRunningEngine(e) { e in
            let fds = try Self.openMany(e, h, 1000, sources: sources)
            defer { for fd in fds { close(fd) } }
            for loop in e.loops {
                let k = e.loops.firstIndex { $0 === loop }!
                try loop.execute { l in
                    l.forEachConnection { c in
                        if let p = c.remoteAddress {
                            let host = String(p.description.split(separator: ":")[0])
                            loopOfSource.with { $0[host, default: []].insert(k) }
                        }
                    }
                }
            }
            #expect(eventually { loopOfSource.get.values.reduce(0) { $0 + $1.count } >= 50 })
            let map = loopOfSource.get
            #expect(map.count == 50)
            #expect(map.values.allSatisfy { $0.count == 1 }, "every source address on one loop: \(map)")
            let per = h.opened.get
            print("figure: source-address hash over 2 loops, 1000 connections from 50 addresses: \(per.sorted { $0.key < $1.key })")
            #expect(per.count == 2, "both loops used: \(per)")
        }
    }

    @Test func unixSocketsAreHandedOutUnderKernelBalancing() throws {
        let h = Census()
        let e = try Self.engine(h, loops: 2, balancing: .kernel, address: "unix://" + tempSocketPath("multicore"))
        try withRunningEngine(e) { e in
            var clients: [TestSocket] = []
            for _ in 0..<100 { clients.append(try TestSocket(e.addresses[0])) }
            #expect(eventually { h.opened.get.values.reduce(0, +) == 100 })
            #expect(h.opened.get == [0: 50, 1: 50])
            try clients[0].send("ping")
            #expect(try clients[0].receive(exactly: 4) == Array("ping".utf8))
        }
    }

    @Test(arguments: [LoadBalancing.kernel, .roundRobin, .leastConnections, .sourceAddressHash])
    func stopWithConnectionsOnEveryLoop(_ balancing: LoadBalancing) throws {
        let h = Census()
        let e = try Self.engine(h, loops: 4, balancing: balancing)
        var clients: [TestSocket] = []
        try e.start()
        for i in 0..<100 { clients.append(try TestSocket(e.addresses[0])); _ = i }
        #expect(eventually { h.opened.get.values.reduce(0, +) == 100 })
        if balancing != .kernel && balancing != .sourceAddressHash { #expect(h.opened.get.count == 4, "\(h.opened.get)") }
        e.stop()
        e.wait()
        #expect(h.closed.get == 100, "every connection got onClose")
        #expect(h.boots.get == 1 && h.shutdowns.get == 1, "onBoot and onShutdown once: \(h.boots.get), \(h.shutdowns.get)")
        for c in clients { #expect(c.sawEOF()) }
    }

    @Test(arguments: [LoadBalancing.kernel, .roundRobin])
    func udpWithSeveralLoops(_ balancing: LoadBalancing) throws {
        let h = Census()
        let e = try Self.engine(h, loops: 2, balancing: balancing, address: "udp://127.0.0.1:0")
        try withRunningEngine(e) { e in
            for client in 0..<20 {
                let s = try TestSocket(e.addresses[0])
                for i in 0..<50 {
                    let d = randomBytes(512, seed: UInt64(client * 100 + i + 1))
                    try s.send(d)
                    #expect(try s.receive(exactly: 512) == d)
                }
            }
            let per = e.loopCounters.map(\.datagramsIn)
            print("figure: UDP over 2 loops (\(balancing)), 1000 datagrams from 20 clients: \(per) per loop")
            #expect(per.reduce(0, +) == 1000)
            #expect(e.counters.datagramsIn == 1000)
            if balancing == .kernel { #expect(per.allSatisfy { $0 > 0 }, "the kernel spread the clients over both sockets") }
        }
    }

    @Test func autoLoopsIsOnePerOnlineCPU() throws {
        var o = Options()
        o.loops = 0
        let e = try Engine(handler: Census(), listen: ["tcp://127.0.0.1:0"], options: o)
        #expect(e.loops.count == Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        try withRunningEngine(e) { _ in }
    }

    /// An engine made and dropped without running closes every socket it bound: the port is
    /// free again (a listener left open would make this bind fail with EADDRINUSE).
    @Test(arguments: [LoadBalancing.kernel, .roundRobin]) func anEngineThatNeverRanReleasesItsPorts(_ balancing: LoadBalancing) throws {
        var port = 0
        do {
            var o = Options()
            o.loops = 4
            o.loadBalancing = balancing
            let e = try Engine(handler: Census(), listen: ["tcp://127.0.0.1:0"], options: o)
            port = e.addresses[0].port
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr)
        let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(rc == 0, "port \(port) still bound: errno \(errno)")
    }
}
