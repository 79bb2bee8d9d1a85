#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import CMallocCounter
import Gnet

/// The Gnet echo server measured by `compare`: write straight from the inbound view (the loop's
/// read buffer), so the framework keeps only what the kernel did not take. Counts heap allocations on the loop thread after warm-up.
final class BenchEcho: EventHandler, @unchecked Sendable {
    /// Counting (calls, allocations) happens only with one loop: with several, callbacks run
    /// on several threads at once and these fields are not shared safely.
    let counting: Bool
    var traffic = 0
    var allocationsAtWarmup: UInt64 = 0
    var allocationsLast: UInt64 = 0
    var callsAtWarmup = 0

    init(counting: Bool) { self.counting = counting }

    func onTraffic(_ c: Conn) -> Action {
        if counting { count() }
        // Safe without checking for .outboundBufferFull: a read never triggers onTraffic while
        // the outbound buffer is at its cap (reading pauses there).
        if let view = try? c.next() { _ = try? c.write(view) }
        return .none
    }

    private func count() {
        traffic += 1
        if traffic == 10_000 {
            allocationsAtWarmup = gnet_thread_allocations()
            callsAtWarmup = traffic
        }
    }

}

/// `gnet-bench serve`: runs the echo server on the main thread (one thread, as a gnetd worker;
/// with `loops` above 1, that many loops under kernel balancing) until SIGTERM/SIGINT, then
/// prints its counters.
func serveEcho(port: Int, cpu: Int, edgeTriggered: Bool, loops: Int = 1) -> Int32 {
    if cpu >= 0 { _ = gnet_pin_to_cpu(Int32(cpu)) }
    let handler = BenchEcho(counting: loops == 1)
    var options = Options()
    options.edgeTriggered = edgeTriggered
    options.loops = loops
    do {
        let engine = try Engine(handler: handler, listen: ["tcp://127.0.0.1:\(port)"], options: options)
        try engine.handleSignals([SIGTERM, SIGINT]) { _ in
            handler.allocationsLast = gnet_thread_allocations()   // loop thread, before stopping
            engine.stop()
        }
        print("listening on \(engine.addresses[0].port)")
        fflush(nil)
        try engine.run()
        let c = engine.counters
        let steady = handler.traffic - handler.callsAtWarmup
        let allocs = handler.traffic > 10_000 ? handler.allocationsLast - handler.allocationsAtWarmup : 0
        printError("served traffic_calls=\(handler.traffic) bytes_in=\(c.bytesIn) bytes_out=\(c.bytesOut) read_calls=\(c.readCalls) write_calls=\(c.writeCalls) loop_iterations=\(c.loopIterations) steady_state_calls=\(steady) steady_state_allocations=\(allocs)\n")
        return 0
    } catch {
        printError("gnet-bench serve: \(error)\n")
        return 1
    }
}
