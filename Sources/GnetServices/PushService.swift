import Gnet

/// The `push` service: every `interval`, the same line goes to every connection the worker
/// holds (the ticker of the gnet README). Connections come and go freely; what they send is
/// read and dropped.
///
/// A connection whose output is at its cap (a peer that stopped reading) misses ticks instead
/// of growing a backlog: it gets the next line once it has caught up.
public final class PushService: EventHandler {
    private let line: [UInt8]
    private let interval: Duration
    private var connections: [ConnID] = []
    private var positions: [ConnID: Int] = [:]
    /// Lines written and ticks skipped for slow peers (loop thread).
    public private(set) var sent = 0, skipped = 0

    /// `message` is sent followed by `\n` every `interval`.
    public init(message: String, interval: Duration) {
        line = Array(message.utf8) + [10]
        self.interval = interval
    }

    public func onBoot(_ engine: Engine) -> Action {
        let loop = engine.eventLoop
        func tick() {
            push(loop)
            loop.schedule(after: interval) { tick() }
        }
        loop.schedule(after: interval) { tick() }
        return .none
    }

    public func onOpen(_ c: Conn) -> Action {
        positions[c.id] = connections.count
        connections.append(c.id)
        return .none
    }

    public func onTraffic(_ c: Conn) -> Action {
        c.discard()
        return .none
    }

    public func onClose(_ c: Conn, error: GnetError?) -> Action {
        guard let i = positions.removeValue(forKey: c.id) else { return .none }
        let last = connections.removeLast()
        if i < connections.count {
            connections[i] = last
            positions[last] = i
        }
        return .none
    }

    /// Draining: every connection is closed now, at a message boundary (only whole lines are
    /// ever written), after the lines already buffered for it go out.
    public func beginDraining(_ loop: EventLoop) {
        for id in connections { loop.conn(id)?.close() }
    }

    private func push(_ loop: EventLoop) {
        self.line.withUnsafeBytes { bytes in
            for id in connections {
                guard let c = loop.conn(id) else { continue }
                do throws(GnetError) {
                    try c.write(bytes)
                    sent += 1
                } catch .outboundBufferFull {
                    skipped += 1
                } catch {
                    // The write closed the connection; onClose tidies up.
                }
            }
        }
    }
}
