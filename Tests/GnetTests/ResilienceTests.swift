#if canImport(Glibc)
import Glibc
#endif
import Gnet
import Testing

@Suite(.timeLimit(.minutes(1))) struct ResilienceTests {
    /// Pushes `total` bytes of a known pattern in 16 KiB blocks, honouring backpressure.
    final class Pusher: EventHandler, @unchecked Sendable {
        let total: Int
        let block: [UInt8]
        var sent: [ConnID: Int] = [:]
        let fullHits = Shared(0)
        let maxBuffered = Shared(0)
        let writables = Shared(0)
        let closeErrors = Shared<[GnetError?]>([])
        init(total: Int) {
            self.total = total
            block = randomBytes(16384, seed: 5)
        }
        func onOpen(_ c: Conn) -> Action { pump(c) }
        func onWritable(_ c: Conn) -> Action {
            writables.with { $0 += 1 }
            return pump(c)
        }
        func pump(_ c: Conn) -> Action {
            var done = sent[c.id] ?? 0
            while done < total {
                do {
                    try c.write(block)
                    done += block.count
                    let b = c.outboundBuffered
                    maxBuffered.with { $0 = max($0, b) }
                } catch .outboundBufferFull {
                    fullHits.with { $0 += 1 }
                    break
                } catch {
                    break
                }
            }
            sent[c.id] = done
            return done >= total ? .close : .none
        }
        func onClose(_ c: Conn, error: GnetError?) -> Action {
            closeErrors.with { $0.append(error) }
            sent[c.id] = nil
            return .none
        }
    }

    @Test func slowReaderGetsEveryByteAndTheWriterIsToldToWait() throws {
        let total = 16 << 20
        let h = Pusher(total: total)
        var o = Options()
        o.writeBufferCap = 64 * 1024
        o.socketSendBuffer = 64 * 1024
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            s.setReceiveBuffer(64 * 1024)
            // Do not read until the server has been told its buffer is full.
            #expect(eventually { h.fullHits.get > 0 })
            let got = try s.receiveUntilEOF()
            #expect(got.count == total)
            var ok = true
            for i in stride(from: 0, to: got.count, by: 16384) where got[i..<(i + 16384)].elementsEqual(h.block) == false { ok = false; break }
            #expect(ok, "every block arrives intact and in order")
        }
        #expect(h.writables.get > 0, "onWritable resumed the writer")
        #expect(h.maxBuffered.get < 64 * 1024 + 16384, "the outbound buffer stays at its cap")
        #expect(h.closeErrors.get == [nil])
    }

    @Test func peerResetMidWriteClosesOnlyThatConnection() throws {
        let h = Pusher(total: 1 << 40)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            do {
                let s = try TestSocket(e.addresses[0])
                _ = try s.receive(exactly: 100_000)
                s.setLingerZero()
            }  // closed with RST while the server is writing
            #expect(eventually { h.closeErrors.get.count == 1 })
            let err = h.closeErrors.get.first ?? nil
            let reset: Bool
            if case .system(let se)? = err { reset = se.errno == ECONNRESET || se.errno == EPIPE } else { reset = false }
            #expect(reset, "onClose carries the reset: \(String(describing: err))")
            // The loop carries on serving.
            let s2 = try TestSocket(e.addresses[0])
            #expect(try s2.receive(exactly: 16384) == h.block)
        }
    }

    @Test func idleTimeoutClosesOnlySilentConnections() throws {
        let h = try EchoHandler()
        var o = Options()
        o.idleTimeout = .milliseconds(300)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let silent = try TestSocket(e.addresses[0])
            let chatty = try TestSocket(e.addresses[0])
            let start = gnetNow()
            for i in 0..<12 {
                try chatty.send([UInt8(i)])
                #expect(try chatty.receive(exactly: 1) == [UInt8(i)])
                usleep(50_000)   // pacing the chatty client, well under the timeout
            }
            #expect(silent.sawEOF())
            #expect(gnetNow() - start >= 0.3)
            try chatty.send([7])
            #expect(try chatty.receive(exactly: 1) == [7], "a connection with traffic stays open")
            #expect(h.closeErrors.get == [.idleTimeout])
        }
    }

    @Test func maxConnectionsRejectsAndCounts() throws {
        let h = try EchoHandler()
        var o = Options()
        o.maxConnections = 3
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let kept = try (0..<3).map { _ in try TestSocket(e.addresses[0]) }
            #expect(eventually { h.opened.get == 3 })
            let extra = try (0..<2).map { _ in try TestSocket(e.addresses[0]) }
            for x in extra { #expect(x.sawEOF()) }
            #expect(e.counters.connectionsRejected == 2)
            for (i, k) in kept.enumerated() {
                try k.send([UInt8(i)])
                #expect(try k.receive(exactly: 1) == [UInt8(i)])
            }
            #expect(h.opened.get == 3)
        }
    }

    @Test func countersFollowTraffic() throws {
        let h = try EchoHandler()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            do {
                let s = try TestSocket(e.addresses[0])
                try s.send(randomBytes(1000, seed: 1))
                _ = try s.receive(exactly: 1000)
            }
            #expect(eventually { e.counters.connectionsClosed == 1 })
            let c = e.counters
            #expect(c.connectionsAccepted == 1 && c.connectionsOpen == 0)
            #expect(c.bytesIn == 1000 && c.bytesOut == 1000)
            #expect(c.readCalls >= 1 && c.writeCalls >= 1 && c.loopIterations >= 2)
        }
    }
}
