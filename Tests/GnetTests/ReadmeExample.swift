// README-EXAMPLE-BEGIN
import Gnet

/// Echoes every byte back to its sender.
final class Echo: EventHandler {
    func onTraffic(_ c: Conn) -> Action {
        if let bytes = try? c.next() { _ = try? c.write(bytes) }
        return .none
    }
}

func serveEcho(on address: String) throws -> Engine {
    let engine = try Engine(handler: Echo(), listen: [address])
    try engine.start()   // or engine.run() to serve on this thread
    return engine        // engine.stop() from any thread ends it
}
// README-EXAMPLE-END
