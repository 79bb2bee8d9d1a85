#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Synchronization

/// A running server and/or client: listeners, one or more event loops, one handler.
///
/// `Engine(handler:listen:)` binds every address at once (so bound ports can be read back
/// before serving); `run()` serves on the calling thread, `start()` on a thread of its own.
/// `stop()` may be called from any thread at any time; `onShutdown` and every `onClose` fire
/// before `run()` returns.
///
/// With `Options.loops` above 1 the engine runs that many loops, each on its own thread with
/// its own poller, buffers and timers, and spreads connections over them as
/// `Options.loadBalancing` says: by the kernel over one `SO_REUSEPORT` socket per loop, or by
/// the first loop accepting and handing each connection to a loop in turn, to the least
/// loaded, or by a hash of the peer's address. `onBoot`, `onTick` and `onShutdown` run once,
/// on the first loop.
public final class Engine: @unchecked Sendable {
    /// The first loop (the only one unless `Options.loops` asks for more).
    public let eventLoop: EventLoop
    /// Every loop of the engine, the first one first.
    public let loops: [EventLoop]
    /// The listeners, in the order given (with several loops under kernel balancing, the
    /// first loop's socket of each address).
    public let listeners: [Listener]
    private let thread = Mutex<pthread_t?>(nil)
    private let loopThreads = Mutex<[pthread_t]>([])
    private let stopRequested = Atomic<Bool>(false)
    private let nextDialLoop = Atomic<Int>(0)

    /// Binds `addresses` (see `NetworkAddress`) and prepares the loops for `handler`
    /// (`counters`, memory the caller owns such as a shared stats page, is the first loop's;
    /// further loops keep their own, summed by `counters`). With
    /// several loops under `.kernel` balancing, each TCP or UDP address is bound once per loop
    /// with `SO_REUSEPORT` (the first socket picks the port when it is 0; the others take the
    /// same). On failure every socket already bound is closed again.
    public convenience init(handler: any EventHandler, listen addresses: [String], options: Options = Options(),
                            counters: UnsafeMutablePointer<gnet_loop_counters_t>? = nil,
                            groupCounters: [UnsafeMutablePointer<gnet_loop_counters_t>] = []) throws(GnetError) {
        let n = options.resolvedLoops
        let perLoop = n > 1 && options.loadBalancing == .kernel
        var shared = options
        if perLoop { shared.reusePort = true }
        var bound: [[Listener]] = Array(repeating: [], count: n)
        do throws(GnetError) {
            for text in addresses {
                let address = try NetworkAddress(parsing: text)
                let first = try Listener.bind(address, options: shared)
                bound[0].append(first)
                if perLoop && address.network != .unix {
                    let again = first.boundNetworkAddress
                    for k in 1..<n {
                        var l = try Listener.bind(again, options: shared)
                        l = Listener(fd: l.fd, address: address, boundAddress: l.boundAddress, socketFile: nil)
                        bound[k].append(l)
                    }
                }
            }
        } catch {
            for l in bound.joined() { l.close() }
            throw error
        }
        try self.init(handler: handler, perLoop: bound, options: options, counters: counters, groupCounters: groupCounters)
    }

    /// Serves already bound listeners (e.g. inherited from a supervisor). The engine owns and
    /// closes them when it stops. With several loops the first loop accepts on them and hands
    /// connections out (round-robin when `Options.loadBalancing` is `.kernel`, which needs
    /// sockets of its own per loop). `groupCounters[g]`, memory the caller owns, receives the
    /// first loop's counts for the connections of listener group `g` (`Listener.group`): a
    /// daemon's per-service figures in its stats page. Groups without one count in memory of
    /// the loop's; `groupCounters(_:)` sums every loop's.
    public convenience init(handler: any EventHandler, listeners: [Listener], options: Options = Options(),
                            counters: UnsafeMutablePointer<gnet_loop_counters_t>? = nil,
                            groupCounters: [UnsafeMutablePointer<gnet_loop_counters_t>] = []) throws(GnetError) {
        var perLoop: [[Listener]] = Array(repeating: [], count: options.resolvedLoops)
        perLoop[0] = listeners
        try self.init(handler: handler, perLoop: perLoop, options: options, counters: counters, groupCounters: groupCounters)
    }

    /// `perLoop[k]` are loop k's own sockets; `perLoop[0]` has one per address, in order.
    private init(handler: any EventHandler, perLoop: [[Listener]], options: Options,
                 counters: UnsafeMutablePointer<gnet_loop_counters_t>?,
                 groupCounters: [UnsafeMutablePointer<gnet_loop_counters_t>]) throws(GnetError) {
        let all = perLoop[0]
        self.listeners = all
        gnet_ignore_sigpipe()
        var made: [EventLoop] = []
        do throws(GnetError) {
            for (k, own) in perLoop.enumerated() {
                let loop = try EventLoop(handler: handler, listeners: own, options: options,
                                         counters: k == 0 ? counters : nil, groupListeners: all,
                                         groupCounters: k == 0 ? groupCounters : [])
                loop.isPrimary = k == 0
                loop.index = k
                made.append(loop)
            }
        } catch {
            for own in perLoop.dropFirst(made.count) { for l in own { l.close() } }
            throw error
        }
        loops = made
        eventLoop = made[0]
        for loop in made { loop.engine = self }
        if made.count > 1 {
            // The first loop hands out what the kernel cannot spread: every stream listener of
            // its own under an acceptor balancer; Unix listeners (no SO_REUSEPORT) under .kernel.
            let strategy: LoadBalancing = options.loadBalancing == .kernel ? .roundRobin : options.loadBalancing
            let kernelSpreads = perLoop.dropFirst().contains { !$0.isEmpty }
            eventLoop.balancer = LoadBalancer(strategy: strategy, loops: made)
            eventLoop.distributes = all.map { l in
                l.address.network.isStream && (!kernelSpreads || l.address.network == .unix)
            }
            eventLoop.afterBoot = { [unowned self] in self.startOtherLoops() }
            eventLoop.afterShutdown = { [unowned self] in
                for loop in self.loops.dropFirst() { try? loop.tasks.post(.stop) }
            }
        }
    }

    /// The bound addresses, ports filled in (`tcp://127.0.0.1:0` comes back with the real port).
    public var addresses: [NetworkAddress] { listeners.map(\.boundNetworkAddress) }

    /// Serves on the calling thread until stopped (the other loops, if any, on threads of
    /// their own, all joined before this returns).
    public func run() throws(GnetError) {
        if stopRequested.load(ordering: .acquiring) { eventLoop.stopping = true }
        defer { joinOtherLoops() }
        try eventLoop.run()
    }

    /// Starts loops 1… once the first loop's `onBoot` has returned.
    private func startOtherLoops() {
        for loop in loops.dropFirst() {
            let box = Unmanaged.passRetained(loop)
            var t = pthread_t()
            let rc = pthread_create(&t, nil, { arg in
                let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
                do { try loop.run() } catch { loop.options.logger.log(.error, "event loop \(loop.index): \(error)") }
                return nil
            }, box.toOpaque())
            if rc != 0 {
                box.release()
                eventLoop.options.logger.log(.error, "event loop \(loop.index): pthread_create: \(SystemError("pthread_create", errno: rc)); its connections go to the others")
                continue
            }
            loopThreads.withLock { $0.append(t) }
        }
    }

    private func joinOtherLoops() {
        for loop in loops.dropFirst() { try? loop.tasks.post(.stop) }
        let threads = loopThreads.withLock { t -> [pthread_t] in let v = t; t = []; return v }
        for t in threads { pthread_join(t, nil) }
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
    /// every connection on every loop gets `onClose`, then `run()` returns.
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

    /// The counters of all loops added up (thread-safe).
    public var counters: LoopCounters {
        var total = LoopCounters(eventLoop.counters)
        for loop in loops.dropFirst() { total.add(LoopCounters(loop.counters)) }
        return total
    }

    /// The counters of listener group `group`'s connections (`Listener.group`; -1: connections
    /// of no listener), every loop's added up (thread-safe): connections, bytes, datagrams and
    /// errors; `readCalls`, `writeCalls` and `loopIterations` are kept per loop only (zero here).
    public func groupCounters(_ group: Int) -> LoopCounters {
        var total = LoopCounters(eventLoop.groupCounters(group))
        for loop in loops.dropFirst() { total.add(LoopCounters(loop.groupCounters(group))) }
        return total
    }

    /// Each loop's counters, the first loop first (thread-safe).
    public var loopCounters: [LoopCounters] { loops.map { LoopCounters($0.counters) } }

    /// The loop a dialled or enrolled connection goes to: each in turn.
    private func nextLoop() -> EventLoop {
        loops[nextDialLoop.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Dials `address` from any thread; `onOpen`/`onClose` report the outcome on the loop.
    /// `started` (optional) runs on the loop with the connection id or the error of starting.
    public func dial(_ address: String, timeout: Duration = .seconds(10),
                     started: (@Sendable (Result<ConnID, GnetError>) -> Void)? = nil) throws(GnetError) {
        let parsed = try NetworkAddress(parsing: address)
        try nextLoop().execute { loop in
            do throws(GnetError) { let id = try loop.dial(parsed, timeout: timeout); started?(.success(id)) } catch { started?(.failure(error)) }
        }
    }

    /// Enrolls a connected socket from any thread; the loop owns `fd` afterwards.
    public func enroll(fd: Int32, started: (@Sendable (Result<ConnID, GnetError>) -> Void)? = nil) throws(GnetError) {
        try nextLoop().execute { loop in
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

    /// Adds another loop's counters to these.
    public mutating func add(_ o: LoopCounters) {
        connectionsOpen += o.connectionsOpen; connectionsAccepted += o.connectionsAccepted
        connectionsClosed += o.connectionsClosed; connectionsRejected += o.connectionsRejected
        bytesIn += o.bytesIn; bytesOut += o.bytesOut; readCalls += o.readCalls; writeCalls += o.writeCalls
        loopIterations += o.loopIterations; errors += o.errors
        datagramsIn += o.datagramsIn; datagramsOut += o.datagramsOut
    }
}
