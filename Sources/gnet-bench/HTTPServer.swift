#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetServices

/// `gnet-bench serve-http`: the daemon's `http` service (13-byte plaintext route) in this
/// process on one thread, so callgrind can profile it (gnetd's workers are spawned from
/// /proc/self/exe, which under valgrind is valgrind itself). Runs until SIGTERM/SIGINT.
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
    let service = HTTPService(routes: [HTTPRoute(prefix: "/", body: Array("Hello, World!".utf8))], options: options)
    do {
        let engine = try Engine(handler: service, listen: ["tcp://127.0.0.1:\(port)"], options: Options())
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
