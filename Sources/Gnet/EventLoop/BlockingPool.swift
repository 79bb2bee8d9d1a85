#if canImport(Glibc)
import Glibc
#endif

/// A small, bounded set of threads for blocking work (file I/O, name resolution, CPU-heavy
/// jobs) so that an event loop never blocks. A job hands its result back to a connection
/// with `ConnHandle.asyncWrite`.
///
/// Guarantees: at most `threads` jobs run at once; at most `queueLimit` wait; `submit` never
/// blocks (it throws `.queueFull` instead); `shutdown()` lets queued jobs finish, then joins.
public final class BlockingPool: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var closed = false
    private var threads: [pthread_t] = []
    /// Most jobs waiting at once.
    public let queueLimit: Int

    /// Starts `threads` worker threads (at least one).
    public init(threads count: Int, queueLimit: Int = 1024) throws(GnetError) {
        self.queueLimit = max(1, queueLimit)
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for _ in 0..<max(1, count) {
            var t = pthread_t()
            let box = Unmanaged.passRetained(self)
            let rc = pthread_create(&t, nil, { arg in
                Unmanaged<BlockingPool>.fromOpaque(arg!).takeRetainedValue().work()
                return nil
            }, box.toOpaque())
            if rc != 0 {
                box.release()
                shutdown()
                throw .system(SystemError("pthread_create", errno: rc))
            }
            threads.append(t)
        }
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Queues `job`. Throws `.queueFull` at the limit and `.engineStopped` after `shutdown()`.
    public func submit(_ job: @escaping @Sendable () -> Void) throws(GnetError) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if closed { throw .engineStopped }
        if queue.count - head >= queueLimit { throw .queueFull }
        queue.append(job)
        pthread_cond_signal(cond)
    }

    /// Runs what is queued, then stops and joins the threads. Idempotent.
    public func shutdown() {
        pthread_mutex_lock(mutex)
        closed = true
        let joining = threads
        threads = []
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for t in joining where pthread_equal(t, pthread_self()) == 0 { pthread_join(t, nil) }
    }

    private func work() {
        while true {
            pthread_mutex_lock(mutex)
            while head == queue.count && !closed { pthread_cond_wait(cond, mutex) }
            if head == queue.count {
                pthread_mutex_unlock(mutex)
                return
            }
            let job = queue[head]
            head += 1
            if head > 64 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            pthread_mutex_unlock(mutex)
            job()
        }
    }
}
