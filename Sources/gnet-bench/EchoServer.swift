#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import CMallocCounter
import Gnet

/// The Gnet echo server measured by `compare`: write straight from the inbound view, keep only
/// what the kernel did not take. Counts heap allocations on the loop thread after warm-up.
final class BenchEcho: EventHandler, @unchecked Sendable {
    var traffic = 0
    var allocationsAtWarmup: UInt64 = 0
    var allocationsLast: UInt64 = 0
    var callsAtWarmup = 0

    func onTraffic(_ c: Conn) -> Action {
        traffic += 1
        if traffic == 10_000 {
            allocationsAtWarmup = gnet_thread_allocations()
            callsAtWarmup = traffic
        }
        guard let view = try? c.peek() else { return .none }
        if (try? c.write(view)) != nil { c.discard(view.count) }
        if traffic > 10_000 { allocationsLast = gnet_thread_allocations() }
        return .none
    }
}

/// `gnet-bench serve`: runs the echo server until SIGTERM/SIGINT, then prints its counters.
func serveEcho(port: Int, cpu: Int, edgeTriggered: Bool) -> Int32 {
    var mask = sigset_t()
    sigemptyset(&mask)
    sigaddset(&mask, SIGTERM)
    sigaddset(&mask, SIGINT)
    pthread_sigmask(SIG_BLOCK, &mask, nil)
    if cpu >= 0 { _ = gnet_pin_to_cpu(Int32(cpu)) }
    let handler = BenchEcho()
    var options = Options()
    options.edgeTriggered = edgeTriggered
    let engine: Engine
    do {
        engine = try Engine(handler: handler, listen: ["tcp://127.0.0.1:\(port)"], options: options)
        try engine.start()
    } catch {
        printError("gnet-bench serve: \(error)\n")
        return 1
    }
    print("listening on \(engine.addresses[0].port)")
    fflush(nil)
    var sig: Int32 = 0
    sigwait(&mask, &sig)
    engine.stop()
    engine.wait()
    let c = engine.counters
    let steady = handler.traffic - handler.callsAtWarmup
    let allocs = handler.traffic > 10_000 ? handler.allocationsLast - handler.allocationsAtWarmup : 0
    printError("served traffic_calls=\(handler.traffic) bytes_in=\(c.bytesIn) bytes_out=\(c.bytesOut) read_calls=\(c.readCalls) write_calls=\(c.writeCalls) loop_iterations=\(c.loopIterations) steady_state_calls=\(steady) steady_state_allocations=\(allocs)\n")
    return 0
}
