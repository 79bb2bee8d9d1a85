#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Synchronization

/// A running server and/or client: listeners, one event loop, one handler.
///
/// `Engine(handler:listen:)` binds every address at once (so bound ports can be read back
/// before serving); `run()` serves on the calling thread, `start()` on a thread of its own.
/// `stop()` may be called from any thread at any time; `onShutdown` and every `onClose` fire
/// before `run()` returns. For several cores, run one engine per process over `SO_REUSEPORT`
/// sockets (see the gnetd supervisor), as the design prescribes.
public final class Engine: @unchecked Sendable {
    /// The loop serving this engine.
    public let eventLoop: EventLoop
    /// The listeners, in the order given.
    public let listeners: [Listener]
    private let thread = Mutex<pthread_t?>(nil)
    private let stopRequested = Atomic<Bool>(false)

    /// Binds `addresses` (see `NetworkAddress`) and prepares a loop for `handler`. On failure
    /// every socket already bound is closed again.
    public convenience init(handler: any EventHandler, listen addresses: [String], options: Options = Options(),
                            counters: UnsafeMutablePointer<gnet_loop_counters_t>? = nil) throws(GnetError) {
        var bound: [Listener] = []
        do throws(GnetError) {
            for text in addresses {
                bound.append(try Listener.bind(NetworkAddress(parsing: text), options: options))
            }
        } catch {
            for l in bound { l.close() }
            throw error
        }
        try self.init(handler: handler, listeners: bound, options: options, counters: counters)
    }

    /// Serves already bound listeners (e.g. inherited from a supervisor). The engine owns and
    /// closes them when it stops.
    public init(handler: any EventHandler, listeners: [Listener], options: Options = Options(),
                counters: UnsafeMutablePointer<gnet_loop_counters_t>? = nil) throws(GnetError) {
        self.listeners = listeners
        gnet_ignore_sigpipe()
        eventLoop = try EventLoop(handler: handler, listeners: listeners, options: options, counters: counters)
        eventLoop.engine = self
    }

    /// The bound addresses, ports filled in (`tcp://127.0.0.1:0` comes back with the real port).
    public var addresses: [NetworkAddress] { listeners.map(\.boundNetworkAddress) }

    /// Serves on the calling thread until stopped.
    public func run() throws(GnetError) {
        if stopRequested.load(ordering: .acquiring) { eventLoop.stopping = true }
        try eventLoop.run()
    }

    /// Serves on a new thread; returns at once. Pair with `stop()` and `wait()`.
    public func start() throws(GnetError) {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let engine = Unmanaged<Engine>.fromOpaque(arg!).takeRetainedValue()
            do { try engine.run() } catch { engine.eventLoop.options.logger.log(.error, "engine: \(error)") }
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            throw .system(SystemError("pthread_create", errno: rc))
        }
        thread.withLock { $0 = t }
    }

    /// Asks the engine to stop (thread-safe, idempotent). Listeners close, `onShutdown` fires,
    /// every connection gets `onClose`, then `run()` returns.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        try? eventLoop.tasks.post(.stop)
    }

    /// Delivers `signals` to `body` on the loop thread instead of their default action (e.g.
    /// `engine.handleSignals([SIGTERM, SIGINT]) { _ in engine.stop() }`). Call it before `run()`
    /// or `start()`, from the main thread before other threads exist: the signals are blocked
    /// for the calling thread and every thread it starts afterwards, and read from a signalfd.
    /// Child processes inherit the blocked mask: reset it when spawning (posix_spawnattr_setsigmask).
    public func handleSignals(_ signals: [Int32], _ body: @escaping (Int32) -> Void) throws(GnetError) {
        guard !eventLoop.running, eventLoop.signalFD < 0 else { throw .invalidArgument("handleSignals must be called once, before the engine runs") }
        let fd = signals.withUnsafeBufferPointer { gnet_signalfd($0.baseAddress, Int32($0.count)) }
        if fd < 0 { throw .system(SystemError("signalfd", errno: gnet_errno())) }
        eventLoop.signalFD = fd
        eventLoop.signalHandler = body
    }

    /// Waits for a `start()`ed engine to finish.
    public func wait() {
        guard let t = thread.withLock({ p -> pthread_t? in let v = p; p = nil; return v }) else { return }
        pthread_join(t, nil)
    }

    /// A snapshot of the loop's counters (thread-safe).
    public var counters: LoopCounters { LoopCounters(eventLoop.counters) }

    /// Dials `address` from any thread; `onOpen`/`onClose` report the outcome on the loop.
    /// `started` (optional) runs on the loop with the connection id or the error of starting.
    public func dial(_ address: String, timeout: Duration = .seconds(10),
                     started: (@Sendable (Result<ConnID, GnetError>) -> Void)? = nil) throws(GnetError) {
        let parsed = try NetworkAddress(parsing: address)
        try eventLoop.execute { loop in
            do throws(GnetError) { let id = try loop.dial(parsed, timeout: timeout); started?(.success(id)) } catch { started?(.failure(error)) }
        }
    }

    /// Enrolls a connected socket from any thread; the loop owns `fd` afterwards.
    public func enroll(fd: Int32, started: (@Sendable (Result<ConnID, GnetError>) -> Void)? = nil) throws(GnetError) {
        try eventLoop.execute { loop in
            do throws(GnetError) { let id = try loop.enroll(fd: fd); started?(.success(id)) } catch {
                Sys.close(fd)
                started?(.failure(error))
            }
        }
    }
}

/// A consistent-enough snapshot of a loop's counters (each field read atomically).
public struct LoopCounters: Sendable, Equatable {
    public var connectionsOpen: UInt64
    public var connectionsAccepted: UInt64
    public var connectionsClosed: UInt64
    public var connectionsRejected: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var readCalls: UInt64
    public var writeCalls: UInt64
    public var loopIterations: UInt64
    public var errors: UInt64
    public var datagramsIn: UInt64
    public var datagramsOut: UInt64

    /// Reads every counter from `p` with relaxed atomic loads.
    public init(_ p: UnsafeMutablePointer<gnet_loop_counters_t>) {
        connectionsOpen = gnet_counter_load(&p.pointee.connections_open)
        connectionsAccepted = gnet_counter_load(&p.pointee.connections_accepted)
        connectionsClosed = gnet_counter_load(&p.pointee.connections_closed)
        connectionsRejected = gnet_counter_load(&p.pointee.connections_rejected)
        bytesIn = gnet_counter_load(&p.pointee.bytes_in)
        bytesOut = gnet_counter_load(&p.pointee.bytes_out)
        readCalls = gnet_counter_load(&p.pointee.read_calls)
        writeCalls = gnet_counter_load(&p.pointee.write_calls)
        loopIterations = gnet_counter_load(&p.pointee.loop_iterations)
        errors = gnet_counter_load(&p.pointee.errors)
        datagramsIn = gnet_counter_load(&p.pointee.datagrams_in)
        datagramsOut = gnet_counter_load(&p.pointee.datagrams_out)
    }
}
