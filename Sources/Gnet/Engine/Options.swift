#if canImport(Glibc)
import Glibc
#endif

/// TCP keep-alive probing: start after `idle` of silence, probe every `interval`, give up
/// after `count` unanswered probes. All three must be positive.
public struct KeepAlive: Sendable, Equatable {
    /// Silence before the first probe.
    public var idle: Duration
    /// Time between probes.
    public var interval: Duration
    /// Unanswered probes before the connection is declared dead.
    public var count: Int

    /// Creates keep-alive settings.
    public init(idle: Duration, interval: Duration, count: Int) {
        self.idle = idle; self.interval = interval; self.count = count
    }
}

/// How an engine with several loops spreads new connections over them.
public enum LoadBalancing: Sendable, Equatable {
    /// One `SO_REUSEPORT` socket per loop for each TCP and UDP address; the kernel picks a
    /// socket by a hash of the connection's addresses. Unix-socket connections, which the
    /// kernel cannot spread this way, are handed out round-robin by the first loop.
    case kernel
    /// The first loop accepts every connection and hands them to the loops in turn.
    case roundRobin
    /// The first loop accepts and hands each connection to the loop holding the fewest.
    case leastConnections
    /// The first loop accepts and hands each connection to a loop chosen by a hash of the
    /// peer's IP address (not its port), so one client host always lands on the same loop.
    case sourceAddressHash
}

/// How an engine runs. Every field has a production default; zero values mean "default" for
/// sizes and "off" for limits, as documented per field.
public struct Options: Sendable {
    /// Use edge-triggered epoll. With `edgeTriggeredChunk > 0` a connection reads at most that
    /// many bytes per turn and is revisited next iteration, so one busy peer cannot starve others.
    public var edgeTriggered = false
    /// Bytes read per connection per loop turn in edge-triggered mode; 0 reads until EAGAIN.
    public var edgeTriggeredChunk = 0
    /// Bind listeners with `SO_REUSEPORT`.
    public var reusePort = false
    /// Bind listeners with `SO_REUSEADDR` (default on).
    public var reuseAddr = true
    /// Size of the loop's read buffer: the most bytes one read call takes. Normalised like gnet:
    /// ≤0 → 64 KiB, ≤1024 → 1024, else the next power of two.
    public var readBufferCap = 0
    /// Soft cap on a connection's outbound buffer (normalised as `readBufferCap`). At the cap a
    /// write throws `.outboundBufferFull`, the loop stops reading that connection, and once the
    /// buffer has drained to half the handler gets `onWritable`.
    public var writeBufferCap = 0
    /// Most bytes a stream connection may hold unconsumed (the bytes `peek` sees); 0 = no
    /// limit. Reads never take it past the limit. At the limit, a handler that consumed some of
    /// its input in that callback gets another `onTraffic` with what is left, and reading
    /// resumes once it is below the limit; a handler that consumed nothing sees the connection
    /// closed with `.inboundBufferFull`. A handler that stops consuming because its output is
    /// full (`outboundIsFull`) is not closed: reading is paused by the output until it drains.
    public var maxInboundBuffered = 0
    /// Event loops, each on its own thread with its own poller, buffers and timers; 0 = one
    /// per online CPU. With more than one, the handler's callbacks run on several threads at
    /// once (those of one connection always on the same thread): keep per-connection state in
    /// `Conn.context` and guard state shared between connections. `onBoot`, `onShutdown` and
    /// `onTick` run once, on the first loop.
    public var loops = 1
    /// How connections are spread over `loops` (default `.kernel`).
    public var loadBalancing: LoadBalancing = .kernel
    /// Fire `onTick` right after start and then after each delay it returns.
    public var ticker = false
    /// TCP keep-alive for accepted and dialled TCP connections; nil leaves the kernel default.
    public var tcpKeepAlive: KeepAlive? = nil
    /// Disable Nagle on TCP connections (default on, as gnet).
    public var tcpNoDelay = true
    /// `SO_RCVBUF` for connections and listeners; 0 leaves the kernel default.
    public var socketReceiveBuffer = 0
    /// `SO_SNDBUF` for connections and listeners; 0 leaves the kernel default.
    public var socketSendBuffer = 0
    /// `SO_BINDTODEVICE` for listeners and dialled sockets.
    public var bindToDevice: String? = nil
    /// Interface name used to join the group when a UDP listen address is an IPv4 multicast group.
    public var multicastInterface: String? = nil
    /// Close a connection that has received nothing for this long (`onClose` gets `.idleTimeout`).
    public var idleTimeout: Duration? = nil
    /// Most connections one loop holds; 0 = no limit. Past it a new connection is accepted and
    /// closed at once and counted in `connections_rejected`.
    public var maxConnections = 0
    /// How long a close may wait for buffered outbound bytes to reach the peer before the socket
    /// is closed anyway.
    public var closeFlushTimeout: Duration = .seconds(5)
    /// `listen(2)` backlog.
    public var listenBacklog: Int32 = 4096
    /// Where the engine reports what it cannot return as an error (accept pauses, dropped tasks).
    public var logger: any GnetLogger = StandardErrorLogger(level: .warning)

    /// Default options.
    public init() {}

    /// The number of loops `loops` asks for (0 → online CPUs, at least 1).
    var resolvedLoops: Int {
        if loops > 0 { return loops }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// gnet's normalisation of buffer caps.
    static func normalisedCap(_ n: Int) -> Int {
        if n <= 0 { return 64 * 1024 }
        if n <= 1024 { return 1024 }
        return BufferPool.capacity(for: n)
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at ±`Int64.max / 4` (about 73 years), so that adding it to
    /// a monotonic clock reading can never overflow, however large a configured timeout is.
    public var nanoseconds: Int64 {
        let limit = Int64.max / 4
        let (s, a) = components
        guard s < limit / 1_000_000_000, s > -(limit / 1_000_000_000) else { return s < 0 ? -limit : limit }
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
