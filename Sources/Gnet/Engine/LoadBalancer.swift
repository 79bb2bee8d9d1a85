#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Chooses the loop for each connection the first loop accepts and hands it over. Lives on
/// the first loop and is used on its thread only; the other loops are reached through their
/// task queues.
final class LoadBalancer {
    let strategy: LoadBalancing
    /// The engine's loops, without reference counting (the engine owns them and outlives this).
    private let loops: [Unmanaged<EventLoop>]
    /// Connections handed to each loop so far (least-connections: those not yet adopted count).
    private var handed: [UInt64]
    private var next = 0

    init(strategy: LoadBalancing, loops: [EventLoop]) {
        self.strategy = strategy
        self.loops = loops.map { Unmanaged.passUnretained($0) }
        handed = Array(repeating: 0, count: loops.count)
    }

    /// The loop for the connection on `fd`: in turn, the one holding the fewest connections
    /// (open, plus handed over and not yet adopted), or by a hash of the peer's IP address.
    func pick(_ fd: Int32) -> Int {
        let n = loops.count
        switch strategy {
        case .kernel, .roundRobin:
            break
        case .leastConnections:
            var best = 0, bestLoad = UInt64.max
            for k in 0..<n {
                let c = loops[k].takeUnretainedValue().counters
                let accepted = gnet_counter_load(&c.pointee.connections_accepted)
                let pending = handed[k] > accepted ? handed[k] - accepted : 0
                let load = gnet_counter_load(&c.pointee.connections_open) + pending
                if load < bestLoad { best = k; bestLoad = load }
            }
            return best
        case .sourceAddressHash:
            if let peer = Sys.peerAddress(fd), let h = Self.hashIP(peer) { return Int(h % UInt64(n)) }
        }
        next = next + 1 == n ? 0 : next + 1
        return next
    }

    /// Gives the accepted `fd` to loop `k` (not the calling loop); if its queue will not take
    /// it (stopping, or full), the connection is closed and counted as rejected.
    func handOff(_ fd: Int32, kind: ConnKind, group: Int, to k: Int, from loop: EventLoop) {
        handed[k] &+= 1
        do {
            try loops[k].takeUnretainedValue().tasks.post(.adopt(fd, kind, group))
        } catch {
            // Counted before the close, so a client that sees it closed sees it counted.
            gnet_counter_add(&loop.counters.pointee.connections_rejected, 1)
            gnet_counter_add(&loop.groupCounters(group).pointee.connections_rejected, 1)
            Sys.close(fd)
        }
    }

    /// Records a connection the calling loop (`k`) kept for itself.
    func kept(_ k: Int) { handed[k] &+= 1 }

    /// FNV-1a over the IPv4 or IPv6 address bytes; nil for a Unix peer.
    static func hashIP(_ a: SocketAddress) -> UInt64? {
        var s = a.storage
        return withUnsafeBytes(of: &s) { raw -> UInt64? in
            let range: Range<Int>
            switch a.family {
            case AF_INET: range = 4..<8          // sin_addr
            case AF_INET6: range = 8..<24        // sin6_addr
            default: return nil
            }
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for i in range { h = (h ^ UInt64(raw[i])) &* 0x0000_0100_0000_01b3 }
            return h
        }
    }
}
