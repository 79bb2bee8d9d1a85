#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import Testing

/// Each listener group's traffic counted apart (a daemon's per-service figures), in memory the
/// caller provides or the loop's own, and adding up to the loop's totals.
struct GroupCounterTests {
    @Test(.timeLimit(.minutes(1)))
    func eachGroupCountsItsOwnConnectionsAndBytes() throws {
        var first = try Listener.bind(NetworkAddress(parsing: "tcp://127.0.0.1:0"), options: Options())
        var second = try Listener.bind(NetworkAddress(parsing: "tcp://127.0.0.1:0"), options: Options())
        first.group = 0
        second.group = 1
        second.limits = ConnectionLimits(maxConnections: 1)
        // Group 0 counts into memory of the caller's, group 1 into the loop's own.
        let provided = UnsafeMutablePointer<gnet_loop_counters_t>.allocate(capacity: 1)
        provided.initialize(to: gnet_loop_counters_t())
        defer { provided.deallocate() }
        let engine = try Engine(handler: EchoHandler(), listeners: [first, second], groupCounters: [provided])
        try withRunningEngine(engine) { e in
            let a = try TestSocket(e.addresses[0])
            try a.send(Array(repeating: 7, count: 1000))
            #expect(try a.receive(exactly: 1000).count == 1000)
            let b = try TestSocket(e.addresses[1])
            try b.send(Array(repeating: 9, count: 300))
            #expect(try b.receive(exactly: 300).count == 300)
            // A second connection to group 1 is past its limit: rejected, counted there only.
            let refused = try TestSocket(e.addresses[1])
            #expect(eventually { e.groupCounters(1).connectionsRejected == 1 })
            _ = refused
            let g0 = e.groupCounters(0), g1 = e.groupCounters(1), loop = e.counters
            #expect(g0 == LoopCounters(provided))
            #expect(g0.connectionsAccepted == 1 && g0.connectionsOpen == 1 && g0.bytesIn == 1000 && g0.bytesOut == 1000)
            #expect(g1.connectionsAccepted == 1 && g1.bytesIn == 300 && g1.bytesOut == 300 && g1.connectionsRejected == 1)
            #expect(g0.connectionsRejected == 0)
            #expect(loop.bytesIn == g0.bytesIn + g1.bytesIn && loop.bytesOut == g0.bytesOut + g1.bytesOut)
            #expect(loop.connectionsAccepted == g0.connectionsAccepted + g1.connectionsAccepted)
            #expect(e.groupCounters(-1).connectionsAccepted == 0)
            shutdown(a.fd, Int32(SHUT_RDWR))
            #expect(eventually { e.groupCounters(0).connectionsClosed == 1 && e.groupCounters(0).connectionsOpen == 0 })
        }
    }
}
