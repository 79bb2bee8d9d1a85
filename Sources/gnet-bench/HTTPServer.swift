#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetServices

/// `gnet-bench serve-http`: the daemon's `http` service (13-byte plaintext route) in this
/// process on one thread, so callgrind can profile it (gnetd's workers are spawned from
/// /proc/self/exe, which under valgrind is valgrind itself), counting its figures as gnetd's
/// workers do: responses by class, refused requests, durations, and the service's traffic in
/// its own block. Runs until SIGTERM/SIGINT.
func serveHTTP(port: Int, cpu: Int, accessLog: String?) -> Int32 {
    if cpu >= 0 { _ = gnet_pin_to_cpu(Int32(cpu)) }
    var options = HTTPServiceOptions()
    if let path = accessLog {
        guard let log = AccessLog(path: path) else {
            printError("gnet-bench serve-http: cannot open \(path): errno \(errno)\n")
            return 1
        }
        options.accessLog = log
    }
    // The figures gnetd keeps in a worker's stats slot, here in memory of the process's own.
    let figures = UnsafeMutablePointer<UInt64>.allocate(capacity: 6 + DurationHistogram.width)
    figures.initialize(repeating: 0, count: 6 + DurationHistogram.width)
    let traffic = UnsafeMutablePointer<gnet_loop_counters_t>.allocate(capacity: 1)
    traffic.initialize(to: gnet_loop_counters_t())
    options.metrics.responsesByClass = figures
    options.metrics.refused = figures + 5
    options.metrics.duration = DurationHistogram(base: figures + 6)
    let service = HTTPService(routes: [HTTPRoute(prefix: "/", body: Array("Hello, World!".utf8))], options: options)
    do {
        let engine = try Engine(handler: service, listen: ["tcp://127.0.0.1:\(port)"], options: Options(), groupCounters: [traffic])
        try engine.handleSignals([SIGTERM, SIGINT]) { _ in engine.stop() }
        print("listening on \(engine.addresses[0].port)")
        fflush(nil)
        try engine.run()
        return 0
    } catch {
        printError("gnet-bench serve-http: \(error)\n")
        return 1
    }
}
