#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import Testing

/// `Options.maxInboundBuffered` and its per-listener form: reading never takes a connection past
/// the limit; a handler that consumes gets turns until it is below; one that consumes nothing
/// is closed with `.inboundBufferFull`; one whose output is full is left to the output's pause.
@Suite struct InboundLimitTests {
    /// Consumes at most `perTurn` bytes per callback (0: nothing, ever), asking for another turn
    /// (`wake`) while bytes are left, and checks that they are the pattern `i % 251` in order;
    /// records the most it ever had buffered and how it closed.
    final class Consumer: EventHandler, @unchecked Sendable {
        let perTurn: Int
        let seen = Shared<Int>(0)
        let mostBuffered = Shared<Int>(0)
        let outOfOrder = Shared<Bool>(false)
        let closed = Shared<[GnetError?]>([])
        init(perTurn: Int) { self.perTurn = perTurn }
        func onTraffic(_ c: Conn) -> Action {
            let buffered = c.inboundBuffered
            mostBuffered.with { $0 = max($0, buffered) }
            guard perTurn > 0, let view = try? c.peek(min(perTurn, buffered)) else { return .none }
            var at = seen.get
            var ordered = true
            for b in view {
                if b != UInt8(at % 251) { ordered = false }
                at += 1
            }
            if !ordered { outOfOrder.with { $0 = true } }
            c.discard(view.count)
            seen.with { $0 = at }
            if c.inboundBuffered > 0 { c.wake() }
            return .none
        }
        func onClose(_ c: Conn, error: GnetError?) -> Action {
            closed.with { $0.append(error) }
            return .none
        }
    }

    static func pattern(_ count: Int, from: Int = 0) -> [UInt8] { (0..<count).map { UInt8((from + $0) % 251) } }

    static func residentKiB() -> Int {
        guard let f = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, f) != nil {
            let s = String(cString: line)
            if s.hasPrefix("VmRSS:") { return Int(s.split(separator: " ")[1]) ?? 0 }
        }
        return 0
    }

    @Test func aHandlerThatNeverConsumesIsClosedAtTheLimitAndMemoryStaysBounded() throws {
        var options = Options()
        options.maxInboundBuffered = 1 << 20
        let h = Consumer(perTurn: 0)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: options)
        let before = Self.residentKiB()
        var sent = 0
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            // Up to 1 GiB, 1 MiB at a time, until the server's close stops the sender.
            let chunk = Self.pattern(1 << 20)
            while sent < 1 << 30 {
                let n = chunk.withUnsafeBytes { send(s.fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            #expect(eventually { h.closed.get.count == 1 })
        }
        let grown = Self.residentKiB() - before
        print("figure: a handler that never consumes, limit 1 MiB: most buffered \(h.mostBuffered.get) bytes, the client got \(sent >> 20) MiB into the kernel before the close, resident memory grew \(grown) KiB")
        #expect(h.closed.get == [.inboundBufferFull])
        #expect(h.mostBuffered.get <= 1 << 20)
        #expect(sent < 1 << 30, "the close stopped the sender")
        #expect(grown < 64 * 1024, "memory stays bounded: grew \(grown) KiB")
    }

    @Test(arguments: [false, true]) func aSlowConsumerGetsEveryByteInOrder(edgeTriggered: Bool) throws {
        var options = Options()
        options.maxInboundBuffered = 64 << 10
        options.edgeTriggered = edgeTriggered
        let h = Consumer(perTurn: 1000)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: options)
        let total = 8 << 20
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0], timeout: 30)
            var at = 0
            while at < total {
                let n = min(1 << 20, total - at)
                try s.send(Self.pattern(n, from: at))
                at += n
            }
            #expect(eventually(seconds: 30) { h.seen.get == total }, "\(h.seen.get) of \(total) bytes")
        }
        #expect(h.seen.get == total)
        #expect(!h.outOfOrder.get)
        #expect(h.mostBuffered.get <= 64 << 10)
        #expect(h.closed.get.allSatisfy { $0 == nil || $0 == .engineStopped || $0 == .endOfStream }, "\(h.closed.get)")
    }

    /// Echoes what fits; stops consuming while its output is full.
    final class BackpressuredEcho: EventHandler, @unchecked Sendable {
        let closed = Shared<[GnetError?]>([])
        func onTraffic(_ c: Conn) -> Action {
            while !c.outboundIsFull, c.inboundBuffered > 0, let view = try? c.peek(min(c.inboundBuffered, 16 << 10)) {
                do { try c.write(view) } catch { return .close }
                c.discard(view.count)
            }
            return .none
        }
        func onWritable(_ c: Conn) -> Action { onTraffic(c) }
        func onClose(_ c: Conn, error: GnetError?) -> Action {
            closed.with { $0.append(error) }
            return .none
        }
    }

    @Test func aHandlerWaitingForItsOutputIsNotClosedAtTheLimit() throws {
        var options = Options()
        options.maxInboundBuffered = 32 << 10
        options.writeBufferCap = 32 << 10
        let h = BackpressuredEcho()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: options)
        let total = 8 << 20
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0], timeout: 30)
            let data = Self.pattern(total)
            // The client writes everything before reading anything: the output fills, input
            // reaches the limit, and the handler consumes nothing until the client reads.
            let sender = try TestThread { try s.send(data) }
            usleep(300_000)
            let echoed = try s.receive(exactly: total)
            try sender.join()
            #expect(echoed == data)
        }
        #expect(h.closed.get.allSatisfy { $0 == nil || $0 == .engineStopped || $0 == .endOfStream }, "\(h.closed.get)")
    }

    @Test func aListenerGroupHasItsOwnLimit() throws {
        let limited = try Listener.bind(NetworkAddress(parsing: "tcp://127.0.0.1:0"), options: Options())
        var open = try Listener.bind(NetworkAddress(parsing: "tcp://127.0.0.1:0"), options: Options())
        var bounded = limited
        bounded.group = 0
        bounded.limits = ConnectionLimits(maxInboundBuffered: 256 << 10)
        open.group = 1
        let h = Consumer(perTurn: 0)
        let engine = try Engine(handler: h, listeners: [bounded, open])
        try withRunningEngine(engine) { e in
            let a = try TestSocket(e.addresses[0])
            let b = try TestSocket(e.addresses[1])
            try b.send(Self.pattern(2 << 20))
            #expect(eventually { h.mostBuffered.get == 2 << 20 }, "the open group buffers what it is sent")
            let chunk = Self.pattern(64 << 10)
            for _ in 0..<64 where chunk.withUnsafeBytes({ send(a.fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 {}
            #expect(eventually { h.closed.get == [.inboundBufferFull] })
            #expect(h.closed.get.count == 1, "the open group's connection is still open")
        }
    }

    // Found by a hostile review of the limit, each failing before its fix.

    /// Records the size of each datagram a dialled UDP connection receives.
    final class UDPDialer: EventHandler, @unchecked Sendable {
        let sizes = Shared<[Int]>([])
        func onOpen(_ c: Conn) -> Action {
            do { try c.write("hi") } catch { return .close }
            return .none
        }
        func onTraffic(_ c: Conn) -> Action {
            let n = c.inboundBuffered
            sizes.with { $0.append(n) }
            c.discard()
            return .none
        }
    }

    @Test func aDialledUDPDatagramIsNotCutToTheLimit() throws {
        var o = Options()
        o.maxInboundBuffered = 100
        let h = UDPDialer()
        let e = try Engine(handler: h, listen: [], options: o)
        let peer = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(peer) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(peer, $0, len) } }
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(peer, $0, &len) } }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try withRunningEngine(e) { e in
            try e.dial("udp://127.0.0.1:\(UInt16(bigEndian: sin.sin_port))")
            var buf = [UInt8](repeating: 0, count: 64)
            var from = sockaddr_storage()
            var flen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &from) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(peer, &buf, 64, 0, $0, &flen) } }
            #expect(n == 2)
            let big = [UInt8](repeating: 7, count: 1000)
            _ = withUnsafePointer(to: &from) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(peer, big, big.count, 0, $0, flen) } }
            #expect(eventually { h.sizes.get == [1000] }, "datagram sizes \(h.sizes.get)")
        }
    }

    /// Sends a file per request byte, holding later requests until the file is out.
    final class FileSender: EventHandler, @unchecked Sendable {
        let file: Int32, size: Int
        var offset = 0, sending = false
        let closed = Shared<[GnetError?]>([])
        init(file: Int32, size: Int) { self.file = file; self.size = size }
        func pump(_ c: Conn) {
            while offset < size {
                guard let n = try? c.sendFile(file, offset: offset, count: size - offset), n > 0 else { c.notifyWritable(); return }
                offset += n
            }
            sending = false
            c.wake()
        }
        func onTraffic(_ c: Conn) -> Action {
            if sending { return .none }
            guard c.discard(1) == 1 else { return .none }
            sending = true
            offset = 0
            pump(c)
            return .none
        }
        func onWritable(_ c: Conn) -> Action { pump(c); return .none }
        func onClose(_ c: Conn, error: GnetError?) -> Action { closed.with { $0.append(error) }; return .none }
    }

    @Test func aHandlerWaitingOnSendFileIsNotClosedAtTheLimit() throws {
        let path = "/tmp/gnet-inbound-limit-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
        let size = 32 << 20
        let f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        defer { close(f); unlink(path) }
        _ = ftruncate(f, off_t(size))
        var o = Options()
        o.maxInboundBuffered = 4096
        o.socketSendBuffer = 64 << 10
        let h = FileSender(file: f, size: size)
        let e = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(e) { e in
            let s = try TestSocket(e.addresses[0], timeout: 10)
            try s.send([UInt8](repeating: 71, count: 1))
            usleep(200_000)
            try s.send([UInt8](repeating: 71, count: 16 << 10))  // pipelined requests; nothing read yet
            usleep(500_000)
            #expect(h.closed.get.isEmpty, "closed while waiting on its own output: \(h.closed.get)")
        }
    }

    /// Edge-triggered with a read chunk: a wake that coincides with a read finding nothing new
    /// still gives the handler its turn (before, the bytes stalled until the peer closed).
    @Test(arguments: [(16, 0), (1, 64)]) func aWakeIsNotLostUnderEdgeTriggeredChunks(chunk: Int, limit: Int) throws {
        var o = Options()
        o.edgeTriggered = true
        o.edgeTriggeredChunk = chunk
        o.maxInboundBuffered = limit
        let h = Consumer(perTurn: 7)
        let e = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        let total = 200_000
        try withRunningEngine(e) { e in
            let s = try TestSocket(e.addresses[0], timeout: 20)
            try s.send(Self.pattern(total))
            #expect(eventually(seconds: 20) { h.seen.get == total }, "\(h.seen.get) of \(total)")
        }
        #expect(!h.outOfOrder.get)
    }
}
