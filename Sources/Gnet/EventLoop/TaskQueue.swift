#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Synchronization

/// Work posted into a loop from any thread.
enum LoopTask {
    /// Write bytes to a connection (to `remote` for a UDP listener's peer).
    case write(ConnID, SocketAddress?, [UInt8], (@Sendable (GnetError?) -> Void)?)
    /// Write several byte arrays, in order, as one.
    case writev(ConnID, SocketAddress?, [[UInt8]], (@Sendable (GnetError?) -> Void)?)
    /// Deliver an extra `onTraffic`.
    case wake(ConnID)
    /// Close gracefully (flush, then close).
    case close(ConnID)
    /// Run a closure on the loop thread.
    case run(@Sendable (EventLoop) -> Void)
    /// Stop the engine.
    case stop
    /// Take over a connection another loop accepted: its descriptor, kind and listener group.
    case adopt(Int32, ConnKind, Int)

    /// Tells a task's waiter that it will never run.
    func abandon(_ error: GnetError) {
        switch self {
        case .write(_, _, _, let done?), .writev(_, _, _, let done?): done(error)
        case .adopt(let fd, _, _): Sys.close(fd)
        default: break
        }
    }
}

/// The one door into a loop from other threads: a mutex-guarded list of tasks plus an eventfd
/// that wakes the loop. The eventfd is written only when the list goes from empty to non-empty,
/// so a burst of posts costs one wake-up.
final class TaskQueue: @unchecked Sendable {
    private struct State {
        var tasks: [LoopTask] = []
        var closed = false
    }
    private let state = Mutex(State())
    /// Read end registered with the loop's epoll.
    let eventFD: Int32
    /// Most tasks waiting at once; past it `post` refuses with `.queueFull`.
    let limit: Int

    init(limit: Int = 1 << 20) throws(SystemError) {
        eventFD = try Sys.eventfd()
        self.limit = limit
    }

    deinit { Sys.close(eventFD) }

    /// Queues `task`; throws `.engineStopped` after `close()`, `.queueFull` at the limit.
    func post(_ task: LoopTask) throws(GnetError) {
        let result: Int = state.withLock { s in
            if s.closed { return -1 }
            if s.tasks.count >= limit { return -2 }
            s.tasks.append(task)
            return s.tasks.count
        }
        switch result {
        case -1: throw .engineStopped
        case -2: throw .queueFull
        case 1: signal()
        default: break
        }
    }

    /// Wakes the loop without a task.
    func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(eventFD, $0.baseAddress, 8) }
    }

    /// Moves every queued task into `into` (which should be empty; its capacity is reused).
    func drain(into: inout [LoopTask]) {
        var counter: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &counter) { Glibc.read(eventFD, $0.baseAddress, 8) }
        state.withLock { s in swap(&s.tasks, &into) }
    }

    /// Refuses all further posts and returns what was still queued.
    func close() -> [LoopTask] {
        state.withLock { s in
            s.closed = true
            let rest = s.tasks
            s.tasks = []
            return rest
        }
    }
}
