import CGnetLinux

/// Identifies one connection for its whole life: the descriptor number plus a generation
/// that changes every time the slot is reused, so a stale id never reaches a newer connection.
public struct ConnID: Hashable, Sendable, CustomStringConvertible {
    /// The socket descriptor while the connection is open.
    public let fd: Int32
    /// Distinguishes successive connections on the same descriptor number.
    public let generation: UInt32

    public var description: String { "\(fd)#\(generation)" }
}

/// Where a connection is in its life.
enum ConnPhase: UInt8 {
    case free, connecting, open, closing
}

/// Which kind of socket a connection is.
enum ConnKind: UInt8 {
    /// TCP stream.
    case tcp
    /// Unix stream.
    case unix
    /// A datagram seen on a UDP listener: `fd` is the listener's, `remote` the sender.
    case udpListener
    /// A dialled (connected) UDP socket.
    case udpConnected
}

/// A pending asynchronous write waiting for its bytes to reach the kernel.
struct WriteCompletion {
    /// Fires when the connection's flushed-byte count reaches this value.
    var flushedTarget: UInt64
    var callback: @Sendable (GnetError?) -> Void
}

/// Everything the loop knows about one connection. Lives at a stable address (one allocation
/// per descriptor number, reused across connections), found by descriptor in the loop's table.
/// Not copyable: it owns its buffers, which a copy would share.
struct ConnRecord: ~Copyable {
    var fd: Int32 = -1
    var generation: UInt32 = 0
    var phase: ConnPhase = .free
    var kind: ConnKind = .tcp
    /// Edge-triggered registration (no interest changes needed).
    var edgeTriggered = false
    /// epoll interest currently registered.
    var interest: UInt32 = 0
    /// Reading is paused because the outbound buffer reached its cap.
    var readPaused = false
    /// The handler asked (`notifyWritable`) for `onWritable` once the socket can take bytes.
    var wantWritable = false
    /// Queued for an extra `onTraffic` (wake, or an edge-triggered chunk limit).
    var scheduled = false
    /// The scheduled turn must read the socket again (edge-triggered chunk limit, resumed reading).
    var readPending = false
    /// The scheduled turn owes the handler an `onTraffic` (wake) even if reading brings nothing.
    var turnWanted = false
    /// Reading resumed after backpressure with inbound bytes the handler had left: the scheduled
    /// turn hands them to it before reading the socket.
    var resumeTraffic = false
    /// The peer closed its side while the handler was still at work (a wake pending with input
    /// left, or waiting to write more); the connection closes with `.endOfStream` once it stops
    /// asking and waiting, or the bytes are gone.
    var peerClosed = false
    /// A close was requested while a callback was running; carried out when it returns.
    var closeRequested = false
    /// The reason of the requested close.
    var closeReason: GnetError? = nil
    /// Inside a handler callback (closes are deferred).
    var inCallback = false
    /// Bytes the handler has not consumed yet, beyond those in the loop's read buffer.
    var inbound = RingBuffer()
    /// Bytes accepted by `write` but not yet taken by the kernel.
    var outbound = RingBuffer()
    /// Unconsumed bytes of the current read, still in the loop's read buffer.
    var pendingStart: UnsafeMutableRawPointer? = nil
    var pendingCount = 0
    /// Total bytes flushed from `outbound` (for async write completions).
    var flushedTotal: UInt64 = 0
    /// Total bytes ever appended to `outbound`.
    var bufferedTotal: UInt64 = 0
    /// Total bytes the kernel has taken (every write path).
    var sentTotal: UInt64 = 0
    /// Async writes whose bytes sit in `outbound`.
    var completions: [WriteCompletion] = []
    /// Monotonic time of the last inbound bytes (for the idle timeout).
    var lastActive: Int64 = 0
    /// The user's per-connection value.
    var context: AnyObject? = nil
    /// The peer address of a UDP datagram, or a dialled address.
    var remote: SocketAddress? = nil
    /// Index of the listener that accepted it; -1 for dialled/enrolled connections.
    var listener: Int = -1
    /// The listener's group (-1 for dialled/enrolled connections).
    var group: Int = -1
    /// Its group's traffic counters (`EventLoop.groupCounters`), counted alongside the loop's.
    var groupCounters: UnsafeMutablePointer<gnet_loop_counters_t> = unclaimedRecordCounters
    /// Reading is paused because the unconsumed input reached `inboundCap`; the handler gets
    /// turns with what it has until it is below.
    var inboundFull = false
    /// Most unconsumed input bytes (0 = no limit).
    var inboundCap = 0
    /// Unconsumed bytes offered to the current `onTraffic` (kept only under a limit).
    var inboundOffered = 0
    /// Outbound soft cap and idle timeout (ns, 0 = none) for this connection.
    var writeCap: Int = 65536
    var idleNanos: Int64 = 0
}

/// Derived facts about a record, read through the pointer: a computed property on the struct
/// itself would make Swift copy the whole record (retaining its references) to evaluate it.
extension UnsafeMutablePointer where Pointee == ConnRecord {
    @inline(__always) var id: ConnID { ConnID(fd: pointee.fd, generation: pointee.generation) }
    @inline(__always) var isOpen: Bool { pointee.phase == .open || pointee.phase == .closing }
    @inline(__always) var isStream: Bool { pointee.kind == .tcp || pointee.kind == .unix }
    @inline(__always) var inboundBuffered: Int { pointee.inbound.count + pointee.pendingCount }
}

/// Where a record not yet claimed by a loop would count (it never does: `claimRecord` points
/// every record at its group's block before use). Never freed.
nonisolated(unsafe) let unclaimedRecordCounters: UnsafeMutablePointer<gnet_loop_counters_t> = {
    let block = UnsafeMutablePointer<gnet_loop_counters_t>.allocate(capacity: 1)
    block.initialize(to: gnet_loop_counters_t())
    return block
}()
