// README-EXAMPLE-BEGIN
import Gnet

/// Echoes every byte back to its sender.
final class Echo: EventHandler {
    func onTraffic(_ c: Conn) -> Action {
        do {
            // Everything received, as at most two spans that cannot outlive this closure;
            // written back with one writev, then consumed.
            try c.withInbound { first, second throws(GnetError) in
                try c.write(first, second)
            }
        } catch {
            return .close  // the write failed: the connection is closing with that error
        }
        return .none
    }
}

func serveEcho(on address: String) throws -> Engine {
    let engine = try Engine(handler: Echo(), listen: [address])
    try engine.start()   // or engine.run() to serve on this thread
    return engine        // engine.stop() from any thread ends it
}
// README-EXAMPLE-END
