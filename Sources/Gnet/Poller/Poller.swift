#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// What a registration stands for, packed into the 64-bit data of an epoll event: the kind in
/// the upper half, a descriptor or listener index in the lower half.
enum PollToken {
    static let connectionKind: UInt64 = 0
    static let listenerKind: UInt64 = 1 << 32
    static let wake: UInt64 = 2 << 32
    static let signal: UInt64 = 3 << 32
    static let watchedKind: UInt64 = 4 << 32
    static let kindMask: UInt64 = 0xFFFF_FFFF_0000_0000

    @inline(__always) static func connection(_ fd: Int32) -> UInt64 { connectionKind | UInt64(UInt32(bitPattern: fd)) }
    @inline(__always) static func listener(_ index: Int) -> UInt64 { listenerKind | UInt64(index) }
}

/// Interest flags, named. Literal Linux ABI values, so the hot path reads constants rather than
/// lazily initialised globals (a test checks them against the C headers).
enum Interest {
    static let readable: UInt32 = 0x001        // EPOLLIN
    static let writable: UInt32 = 0x004        // EPOLLOUT
    static let error: UInt32 = 0x008           // EPOLLERR
    static let hangUp: UInt32 = 0x010          // EPOLLHUP
    static let exclusive: UInt32 = 1 << 28     // EPOLLEXCLUSIVE
    static let edgeTriggered: UInt32 = 1 << 31 // EPOLLET
}

/// One loop's epoll instance: registration and waiting, nothing else (the loop decides what
/// events mean). Not thread-safe; owned by one loop.
struct Poller {
    let fd: Int32
    private let events: UnsafeMutablePointer<gnet_event_t>
    /// Most events one `wait` returns.
    let capacity: Int32 = 512

    init() throws(SystemError) {
        fd = try Sys.epollCreate()
        events = .allocate(capacity: Int(capacity))
    }

    /// Releases the epoll descriptor and the event array.
    func close() {
        Sys.close(fd)
        events.deallocate()
    }

    func register(_ socket: Int32, interest: UInt32, token: UInt64) throws(SystemError) {
        try Sys.epollCtl(fd, EPOLL_CTL_ADD, socket, interest, token)
    }

    func modify(_ socket: Int32, interest: UInt32, token: UInt64) throws(SystemError) {
        try Sys.epollCtl(fd, EPOLL_CTL_MOD, socket, interest, token)
    }

    /// Removes a registration; a descriptor that is not registered is not an error here.
    func deregister(_ socket: Int32) {
        _ = gnet_epoll_ctl(fd, EPOLL_CTL_DEL, socket, 0, 0)
    }

    /// Waits up to `timeoutMs` (-1 = forever) and returns how many events are ready; EINTR is
    /// an empty wait.
    @inline(__always)
    func wait(timeoutMs: Int32) throws(SystemError) -> Int {
        try Sys.epollWait(fd, events, capacity, timeoutMs)
    }

    /// The i-th event of the last `wait`.
    @inline(__always)
    subscript(i: Int) -> gnet_event_t { events[i] }
}
