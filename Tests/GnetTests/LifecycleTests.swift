#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Gnet
import Testing

@Suite(.timeLimit(.minutes(1))) struct LifecycleTests {
    @Test func severalListenersAtOnce() throws {
        let handler = try EchoHandler()
        let engine = try Engine(handler: handler, listen: [
            "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "udp://127.0.0.1:0", "udp://127.0.0.1:0",
            "unix://" + tempSocketPath("a"), "unix://" + tempSocketPath("b"),
        ])
        let paths = engine.addresses.filter { $0.network == .unix }.map(\.path)
        try withRunningEngine(engine) { e in
            for (i, a) in e.addresses.enumerated() {
                let s = try TestSocket(a)
                let msg = Array("hello \(i)".utf8)
                try s.send(msg)
                #expect(try s.receive(exactly: msg.count) == msg)
            }
        }
        for p in paths { #expect(access(p, F_OK) != 0, "unix socket file removed after close") }
    }

    final class Ticker: EventHandler, @unchecked Sendable {
        var ticks = 0
        var conn: Conn?
        let wakeTraffic = Shared(0)
        let shutdowns = Shared(0)
        func onOpen(_ c: Conn) -> Action { conn = c; return .none }
        func onTraffic(_ c: Conn) -> Action {
            if c.inboundBuffered == 0 { wakeTraffic.with { $0 += 1 } }
            return .none
        }
        func onTick() -> (delay: Duration, action: Action) {
            ticks += 1
            conn?.wake()
            return (.milliseconds(10), ticks >= 25 ? .shutdown : .none)
        }
        func onShutdown(_ engine: Engine) { shutdowns.with { $0 += 1 } }
    }

    @Test func tickerShutsDownAfter25TicksAndWakeDeliversTraffic() throws {
        let h = Ticker()
        var o = Options()
        o.ticker = true
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        let client = try TestSocket(engine.addresses[0])
        let start = gnetNow()
        try engine.run()   // returns by itself after the 25th tick
        let elapsed = gnetNow() - start
        #expect(h.ticks == 25)
        #expect(h.shutdowns.get == 1)
        #expect(elapsed >= 0.2, "24 delays of 10 ms")
        #expect(h.wakeTraffic.get >= 1, "wake from the ticker produced onTraffic")
        #expect(client.sawEOF())
    }

    @Test func shutdownClosesEveryConnection() throws {
        let handler = try EchoHandler()
        let engine = try Engine(handler: handler, listen: ["tcp://127.0.0.1:0"])
        try engine.start()
        let clients = try (0..<100).map { _ in try TestSocket(engine.addresses[0]) }
        #expect(eventually { handler.opened.get == 100 })
        engine.stop()
        engine.wait()
        #expect(handler.closed.get == 100)
        for c in clients { #expect(c.sawEOF()) }
    }

    final class CloseAfterEcho: EventHandler {
        func onTraffic(_ c: Conn) -> Action {
            _ = try? c.write(c.next())
            return .close
        }
    }

    @Test func closeActionFromTrafficStillDeliversTheEcho() throws {
        let engine = try Engine(handler: CloseAfterEcho(), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            try s.send("bye")
            #expect(try s.receiveUntilEOF() == Array("bye".utf8))
        }
    }

    final class RefuseOnOpen: EventHandler, @unchecked Sendable {
        let closes = Shared<[GnetError?]>([])
        func onOpen(_ c: Conn) -> Action {
            _ = try? c.write("go away\n")
            return .close
        }
        func onClose(_ c: Conn, error: GnetError?) -> Action {
            closes.with { $0.append(error) }
            return .none
        }
    }

    @Test func closeActionFromOpenFiresClose() throws {
        let h = RefuseOnOpen()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            #expect(try s.receiveUntilEOF() == Array("go away\n".utf8))
            #expect(eventually { h.closes.get.count == 1 })
            #expect(h.closes.get == [nil])
        }
    }

    final class Remember: EventHandler, @unchecked Sendable {
        let handles = Shared<[ConnHandle]>([])
        let closed = Shared(0)
        func onOpen(_ c: Conn) -> Action { handles.with { $0.append(c.handle) }; return .none }
        func onClose(_ c: Conn, error: GnetError?) -> Action { closed.with { $0 += 1 }; return .none }
    }

    @Test func asyncWriteToADisconnectedPeerReportsClosed() throws {
        let h = Remember()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            do {
                let s = try TestSocket(e.addresses[0])
                #expect(eventually { h.handles.get.count == 1 })
                _ = s
            }
            #expect(eventually { h.closed.get == 1 })
            let result = Shared<[GnetError?]>([])
            h.handles.get[0].asyncWrite(Array("late".utf8)) { err in result.with { $0.append(err) } }
            #expect(eventually { result.get.count == 1 })
            #expect(result.get == [.connectionClosed])
        }
        // After the engine stopped, a write is refused at once.
        let after = Shared<[GnetError?]>([])
        h.handles.get[0].asyncWrite([1]) { err in after.with { $0.append(err) } }
        #expect(after.get == [.engineStopped])
    }

    @Test func concurrentWakeAndCloseFromOtherThreads() throws {
        let h = Remember()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let clients = try (0..<50).map { _ in try TestSocket(e.addresses[0]) }
            #expect(eventually { h.handles.get.count == 50 })
            let handles = h.handles.get
            DispatchQueue.concurrentPerform(iterations: 4) { t in
                for round in 0..<200 {
                    for (i, handle) in handles.enumerated() where (i + round + t) % 3 == 0 {
                        handle.wake()
                        if round == 150 { handle.close() }
                        handle.asyncWrite([UInt8(truncatingIfNeeded: i)])
                    }
                }
            }
            #expect(eventually { h.closed.get == 50 })
            for c in clients { #expect(c.sawEOF()) }
        }
    }
}

func gnetNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
