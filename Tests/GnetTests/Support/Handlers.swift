#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// How the echo handler sends bytes back.
enum EchoWrite: String, CaseIterable, Sendable {
    case sync, asyncWrite, asyncWritev
}

/// Echoes every byte, synchronously or through a blocking-pool thread and `asyncWrite(v)`.
final class EchoHandler: EventHandler, @unchecked Sendable {
    let mode: EchoWrite
    let pool: BlockingPool?
    let opened = Shared(0)
    let closed = Shared(0)
    let closeErrors = Shared<[GnetError?]>([])

    init(mode: EchoWrite = .sync) throws {
        self.mode = mode
        pool = mode == .sync ? nil : try BlockingPool(threads: 1)
    }

    deinit { pool?.shutdown() }

    func onOpen(_ c: Conn) -> Action {
        opened.with { $0 += 1 }
        return .none
    }

    func onTraffic(_ c: Conn) -> Action {
        switch mode {
        case .sync:
            guard let view = try? c.peek() else { return .none }
            if (try? c.write(view)) != nil { c.discard(view.count) }
        case .asyncWrite, .asyncWritev:
            let bytes = c.readBytes()
            let h = c.handle
            let split = mode == .asyncWritev
            try? pool?.submit {
                if split {
                    let half = bytes.count / 2
                    h.asyncWritev([Array(bytes[..<half]), Array(bytes[half...])])
                } else {
                    h.asyncWrite(bytes)
                }
            }
        }
        return .none
    }

    func onClose(_ c: Conn, error: GnetError?) -> Action {
        closed.with { $0 += 1 }
        closeErrors.with { $0.append(error) }
        return .none
    }
}
