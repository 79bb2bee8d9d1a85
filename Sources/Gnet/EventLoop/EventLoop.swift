#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// A single-threaded epoll reactor: poll → I/O → posted tasks → timers, round and round.
///
/// Everything a loop owns (connections, buffers, timers, the handler's callbacks) is touched
/// only by the thread running `run()`. Other threads reach it through `post` (an eventfd-woken
/// task queue), which `ConnHandle` and `Engine` wrap.
public final class EventLoop: @unchecked Sendable {
    let poller: Poller
    let handler: any EventHandler
    let options: Options
    unowned(unsafe) var engine: Engine! = nil
    let tasks: TaskQueue
    /// Counters (possibly in shared memory, owned by whoever passed them in).
    public let counters: UnsafeMutablePointer<gnet_loop_counters_t>
    private let ownsCounters: Bool

    @exclusivity(unchecked) var listeners: [Listener]
    /// Connection records indexed by descriptor; entries are allocated once and reused.
    @exclusivity(unchecked) var table: UnsafeMutablePointer<UnsafeMutablePointer<ConnRecord>?>
    @exclusivity(unchecked) var tableCapacity: Int
    let pool = BufferPool()
    /// The one buffer every read goes into.
    let readBuffer: UnsafeMutableRawPointer
    let readCapacity: Int
    let writeCap: Int
    /// Where non-contiguous `peek`/`next` results are assembled.
    @exclusivity(unchecked) var scratch: UnsafeMutableRawPointer
    @exclusivity(unchecked) var scratchCapacity: Int
    @exclusivity(unchecked) var timers = TimerQueue()
    /// Monotonic time in ns, refreshed each iteration while timers exist.
    @exclusivity(unchecked) var now: Int64
    let idleNanos: Int64
    /// Connections owed a turn next iteration (wake, edge-triggered chunk limit).
    @exclusivity(unchecked) var scheduled: [ConnID] = []
    @exclusivity(unchecked) var scheduledSpare: [ConnID] = []
    /// Connection closes requested while a callback ran.
    @exclusivity(unchecked) var deferredCloses: [ConnID] = []
    @exclusivity(unchecked) var callbackDepth = 0
    @exclusivity(unchecked) var taskBatch: [LoopTask] = []
    @exclusivity(unchecked) var stopping = false
    @exclusivity(unchecked) var running = false
    @exclusivity(unchecked) var openConnections = 0
    /// Open connections per listener group.
    @exclusivity(unchecked) var groupConnections: [Int] = []
    /// Traffic counters per listener group, `groupCounters[g]`, and one more, last, for
    /// connections of no group (enrolled, dialled). The loop adds each connection's
    /// connections, bytes, datagrams and errors to its group's block as well as to `counters`
    /// (system-call counts only to `counters`): a daemon's per-service figures.
    @exclusivity(unchecked) var groupCounters: [UnsafeMutablePointer<gnet_loop_counters_t>] = []
    /// The blocks this loop allocated (those no caller provided).
    private var ownedGroupCounters: [UnsafeMutablePointer<gnet_loop_counters_t>] = []
    /// Per-group limits resolved from the listeners (normalised caps, ns timeouts).
    @exclusivity(unchecked) var groupLimits: [(writeCap: Int, idleNanos: Int64, maxConnections: Int, inboundCap: Int)] = []
    /// Listeners stopped for good (draining): not re-armed after an accept pause.
    @exclusivity(unchecked) var acceptingStopped = false
    @exclusivity(unchecked) var loggedAcceptPause = false
    /// Descriptors watched for readability outside the connection machinery (`watchReadable`).
    @exclusivity(unchecked) var watched: [Int32: () -> Void] = [:]
    /// signalfd and the handler for signals delivered to this loop (see `Engine.handleSignals`).
    @exclusivity(unchecked) var signalFD: Int32 = -1
    @exclusivity(unchecked) var signalHandler: ((Int32) -> Void)? = nil
    /// `run()` was entered (from then on `shutDown` closes the listeners).
    var ran = false
    /// The engine's first loop: runs `onBoot`, `onShutdown` and the ticker, and stops the others.
    var isPrimary = true
    /// Set on the loop that accepts for others: which of its listeners' connections it hands
    /// out (`distributes[i]`), and how.
    var balancer: LoadBalancer? = nil
    var distributes: [Bool] = []
    /// This loop's index in its engine.
    var index = 0
    /// Called on the primary loop right after `onBoot` (the engine starts the other loops then),
    /// and when it shuts down after `onShutdown` (the engine stops them).
    var afterBoot: (() -> Void)? = nil
    var afterShutdown: (() -> Void)? = nil
    /// pthread of the running loop, for `inLoop`.
    @exclusivity(unchecked) var thread: pthread_t? = nil

    /// `groupListeners` (default: `listeners`) are all of the engine's listeners, whose groups
    /// and limits apply to connections handed to this loop by another.
    init(handler: any EventHandler, listeners: [Listener], options: Options,
         counters external: UnsafeMutablePointer<gnet_loop_counters_t>?, groupListeners: [Listener]? = nil,
         groupCounters externalGroups: [UnsafeMutablePointer<gnet_loop_counters_t>] = []) throws(GnetError) {
        self.handler = handler
        self.options = options
        self.listeners = listeners
        do throws(SystemError) {
            poller = try Poller()
        } catch { throw .system(error) }
        do throws(SystemError) {
            tasks = try TaskQueue()
        } catch {
            poller.close()
            throw .system(error)
        }
        if let external {
            counters = external
            ownsCounters = false
        } else {
            counters = .allocate(capacity: 1)
            counters.initialize(to: gnet_loop_counters_t())
            ownsCounters = true
        }
        tableCapacity = 1024
        table = .allocate(capacity: tableCapacity)
        table.initialize(repeating: nil, count: tableCapacity)
        readCapacity = Options.normalisedCap(options.readBufferCap)
        writeCap = Options.normalisedCap(options.writeBufferCap)
        readBuffer = .allocate(byteCount: readCapacity, alignment: 64)
        scratchCapacity = 4096
        scratch = .allocate(byteCount: scratchCapacity, alignment: 16)
        now = gnet_monotonic_ns()
        idleNanos = options.idleTimeout.map { max(1, $0.nanoseconds) } ?? 0
        let limitSource = groupListeners ?? listeners
        let groups = (limitSource.map(\.group).max() ?? 0) + 1
        groupConnections = Array(repeating: 0, count: groups)
        groupLimits = Array(repeating: (Options.normalisedCap(options.writeBufferCap), options.idleTimeout.map { max(1, $0.nanoseconds) } ?? 0,
                                        options.maxConnections, max(0, options.maxInboundBuffered)), count: groups)
        for g in 0...groups {
            if g < groups && g < externalGroups.count {
                groupCounters.append(externalGroups[g])
            } else {
                let block = UnsafeMutablePointer<gnet_loop_counters_t>.allocate(capacity: 1)
                block.initialize(to: gnet_loop_counters_t())
                ownedGroupCounters.append(block)
                groupCounters.append(block)
            }
        }
        for l in limitSource where l.group >= 0 {
            if let limits = l.limits {
                groupLimits[l.group] = (Options.normalisedCap(limits.writeBufferCap), limits.idleTimeout.map { max(1, $0.nanoseconds) } ?? 0,
                                        limits.maxConnections, max(0, limits.maxInboundBuffered))
            }
        }
        scheduled.reserveCapacity(256)
        scheduledSpare.reserveCapacity(256)
        deferredCloses.reserveCapacity(64)
        taskBatch.reserveCapacity(256)
    }

    deinit {
        // A loop that never ran still owns its listeners (an engine made and dropped).
        if !ran { for l in listeners { l.close() } }
        for i in 0..<tableCapacity {
            if let r = table[i] {
                r.deinitialize(count: 1)  // its buffers give their storage back to the pool
                r.deallocate()
            }
        }
        table.deallocate()
        readBuffer.deallocate()
        scratch.deallocate()
        if ownsCounters { counters.deallocate() }
        for block in ownedGroupCounters { block.deallocate() }
        poller.close()
    }

    /// True when called on this loop's thread.
    public var inLoop: Bool {
        guard let t = thread else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    /// On the loop's thread, or the loop has not started yet (setting up before `run`). Loop-only
    /// entry points assert it in debug builds, as SwiftNIO asserts `inEventLoop`; the check
    /// compiles away in release builds.
    var mayTouchLoopState: Bool { thread == nil || inLoop }

    /// Queues work for the loop thread. Thread-safe. Throws `.engineStopped` once the loop ended.
    public func execute(_ body: @escaping @Sendable (EventLoop) -> Void) throws(GnetError) {
        try tasks.post(.run(body))
    }

    /// The connection `id` names, if it is still open or connecting (loop thread only). This is
    /// how one connection reaches another, e.g. a proxy's front and back ends.
    public func conn(_ id: ConnID) -> Conn? {
        assert(mayTouchLoopState, "EventLoop.conn called off the loop thread")
        guard let r = record(id) else { return nil }
        return conn(r)
    }

    /// Calls `body` with every open connection (loop thread only), e.g. to let idle ones go
    /// when draining. `body` may close the connection it is given.
    public func forEachConnection(_ body: (Conn) -> Void) {
        assert(mayTouchLoopState, "EventLoop.forEachConnection called off the loop thread")
        for fd in 0..<tableCapacity {
            guard let r = table[fd], r.pointee.phase == .open else { continue }
            body(conn(r))
        }
    }

    /// Stops accepting on every listener for good (loop thread): the descriptors are closed
    /// (a supervisor holding copies keeps the sockets alive for its other workers), open
    /// connections carry on. Used to drain.
    public func stopAccepting() {
        assert(mayTouchLoopState, "EventLoop.stopAccepting called off the loop thread")
        guard !acceptingStopped else { return }
        acceptingStopped = true
        for i in listeners.indices {
            poller.deregister(listeners[i].fd)
            if listeners[i].address.network.isDatagram { continue }  // UDP has no connections to drain
            listeners[i].close()
        }
    }

    /// Calls `body` on the loop thread whenever `fd` is readable (level-triggered) — for a pipe,
    /// an eventfd, a control channel: descriptors that are not connections and should not count
    /// as ones. The caller keeps ownership of `fd`; call `unwatch` before closing it.
    public func watchReadable(_ fd: Int32, _ body: @escaping () -> Void) throws(GnetError) {
        assert(mayTouchLoopState, "EventLoop.watchReadable called off the loop thread")
        do throws(SystemError) {
            try poller.register(fd, interest: Interest.readable, token: PollToken.watchedKind | UInt64(UInt32(bitPattern: fd)))
        } catch { throw .system(error) }
        watched[fd] = body
    }

    /// Stops watching `fd`.
    public func unwatch(_ fd: Int32) {
        assert(mayTouchLoopState, "EventLoop.unwatch called off the loop thread")
        guard watched.removeValue(forKey: fd) != nil else { return }
        poller.deregister(fd)
    }

    /// Number of connections this loop holds open now (loop thread).
    public var connectionCount: Int { openConnections }

    // MARK: running

    /// Runs until stopped. Returns after `onShutdown` and every `onClose` have fired.
    func run() throws(GnetError) {
        thread = pthread_self()
        ran = true
        running = true
        defer { running = false }
        now = gnet_monotonic_ns()
        do {
            try poller.register(tasks.eventFD, interest: Interest.readable, token: PollToken.wake)
            if signalFD >= 0 { try poller.register(signalFD, interest: Interest.readable, token: PollToken.signal) }
            for i in listeners.indices {
                try poller.register(listeners[i].fd, interest: listenerInterest(i), token: PollToken.listener(i))
            }
        } catch {
            shutDown()
            throw .system(error)
        }
        if isPrimary {
            if handler.onBoot(engine) == .shutdown { stopping = true }
            afterBoot?()
            if options.ticker && !stopping { timers.schedule(at: now, .tick) }
        }
        while !stopping {
            let timeout = pollTimeout()
            let n: Int
            do {
                n = try poller.wait(timeoutMs: timeout)
            } catch {
                options.logger.log(.error, "event loop: \(error)")
                shutDown()
                throw .system(error)
            }
            gnet_counter_add(&counters.pointee.loop_iterations, 1)
            if !timers.isEmpty { now = gnet_monotonic_ns() }
            for i in 0..<n {
                let ev = poller[i]
                let kind = ev.token & PollToken.kindMask
                let low = Int32(truncatingIfNeeded: ev.token)
                if kind == PollToken.connectionKind {
                    connectionEvent(fd: low, events: ev.events)
                } else if kind == PollToken.listenerKind {
                    listenerEvent(Int(low))
                } else if kind == PollToken.wake {
                    runTasks()
                } else if kind == PollToken.signal {
                    runSignals()
                } else if let body = watched[low] {
                    callbackDepth &+= 1
                    body()
                    callbackDepth &-= 1
                    runDeferredCloses()
                }
            }
            if !scheduled.isEmpty { runScheduled() }
            if !timers.isEmpty { runTimers() }
        }
        shutDown()
    }

    private func pollTimeout() -> Int32 {
        if !scheduled.isEmpty || stopping { return 0 }
        guard let next = timers.nextDeadline else { return -1 }
        now = gnet_monotonic_ns()
        let delta = next - now
        if delta <= 0 { return 0 }
        return Int32(clamping: (delta + 999_999) / 1_000_000)
    }

    private func runTasks() {
        tasks.drain(into: &taskBatch)
        for task in taskBatch {
            switch task {
            case .write(let id, let to, let bytes, let done):
                guard let r = record(id) else { done?(.connectionClosed); continue }
                bytes.withUnsafeBytes { b in asyncWrite(r, to: to, [b], done: done) }
            case .writev(let id, let to, let parts, let done):
                guard let r = record(id) else { done?(.connectionClosed); continue }
                withRawBuffers(parts) { asyncWrite(r, to: to, $0, done: done) }
            case .wake(let id):
                if let r = record(id) { schedule(r, read: false) }
            case .close(let id):
                if let r = record(id) { requestClose(r, reason: nil) }
            case .run(let body):
                callbackDepth &+= 1
                body(self)
                callbackDepth &-= 1
                runDeferredCloses()
            case .stop:
                stopping = true
            case .adopt(let fd, let kind, let group):
                adopt(fd, kind: kind, group: group)
            }
        }
        taskBatch.removeAll(keepingCapacity: true)
    }

    private func asyncWrite(_ r: UnsafeMutablePointer<ConnRecord>, to: SocketAddress?, _ parts: [UnsafeRawBufferPointer],
                            done: (@Sendable (GnetError?) -> Void)?) {
        if r.pointee.kind == .udpListener {
            guard let to else { done?(.invalidAddress("no peer address")); return }
            r.pointee.remote = to
        }
        do {
            _ = try write(r, parts)
        } catch {
            done?(error)
            return
        }
        guard let done else { return }
        if r.pointee.outbound.isEmpty || !r.isStream {
            done(nil)
        } else {
            r.pointee.completions.append(WriteCompletion(flushedTarget: r.pointee.bufferedTotal, callback: done))
        }
    }

    private func runSignals() {
        while true {
            let sig = gnet_read_signal(signalFD)
            if sig <= 0 { return }
            callbackDepth &+= 1
            signalHandler?(Int32(sig))
            callbackDepth &-= 1
            runDeferredCloses()
        }
    }

    private func runScheduled() {
        swap(&scheduled, &scheduledSpare)
        for id in scheduledSpare {
            guard let r = record(id), r.pointee.scheduled else { continue }
            let readAgain = r.pointee.closeRequested == false && r.pointee.readPending
            let wanted = r.pointee.turnWanted
            r.pointee.turnWanted = false
            r.pointee.scheduled = false
            r.pointee.readPending = false
            if r.pointee.resumeTraffic {
                // Reading resumed after backpressure, and the handler had stopped with input
                // left (it waited for room to answer): it goes on with that input first, then
                // the socket is read again.
                r.pointee.resumeTraffic = false
                if r.pointee.phase == .open && r.inboundBuffered > 0 {
                    deliverTraffic(r)
                    guard r.pointee.generation == id.generation, r.pointee.phase == .open, !r.pointee.readPaused else { continue }
                }
            }
            if readAgain && !r.pointee.peerClosed {
                // A wake asked for a turn with the bytes already held: if the read brings
                // nothing new (edge-triggered: no further event comes), the turn is given here.
                if !readStream(r) && wanted && r.pointee.generation == id.generation && r.pointee.phase == .open
                    && r.inboundBuffered > 0 {
                    deliverTraffic(r)
                    closeIfPeerDone(r)
                }
            } else if r.pointee.phase == .open {
                deliverTraffic(r)
                closeIfPeerDone(r)
            }
        }
        scheduledSpare.removeAll(keepingCapacity: true)
    }

    /// Runs the timers due now, each once: timers armed while they run (including re-arms of
    /// themselves) are held to at least a millisecond from now (`TimerQueue.floor`), and the
    /// present is fixed at entry, so this returns even if every callback re-arms late or runs
    /// long.
    private func runTimers() {
        let present = now
        timers.floor = present &+ 1_000_000
        defer { timers.floor = .min }
        while let event = timers.popDue(now: present) {
            switch event {
            case .tick:
                callbackDepth &+= 1
                let (delay, action) = handler.onTick()
                callbackDepth &-= 1
                runDeferredCloses()
                if action == .shutdown { stopping = true }
                if !stopping { timers.schedule(at: now + max(0, delay.nanoseconds), .tick) }
            case .idleCheck(let id):
                guard let r = record(id), r.pointee.phase == .open else { continue }
                let due = r.pointee.lastActive + r.pointee.idleNanos
                if due <= now {
                    requestClose(r, reason: .idleTimeout)
                } else {
                    timers.schedule(at: due, .idleCheck(id))
                }
            case .closeDeadline(let id):
                if let r = record(id), r.pointee.phase == .closing { finishClose(r, reason: .flushTimeout) }
            case .connectDeadline(let id):
                if let r = record(id), r.pointee.phase == .connecting { failConnect(r, .connectTimeout) }
            case .resumeAccept(let i):
                resumeAccepting(i)
            case .run(let body):
                callbackDepth &+= 1
                body()
                callbackDepth &-= 1
                runDeferredCloses()
            }
        }
    }

    /// Runs `body` on the loop thread after `delay` (loop thread only). Arming a timer
    /// allocates nothing beyond what making `body` did: a periodic timer that re-arms the same
    /// closure value (kept in a property) costs no allocation per firing, where a new closure
    /// literal allocates its captured context each time.
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) {
        assert(mayTouchLoopState, "EventLoop.schedule(after:) called off the loop thread")
        timers.schedule(at: gnet_monotonic_ns() + max(0, delay.nanoseconds), .run(body))
        if timers.count == 1 { now = gnet_monotonic_ns() }
    }


    private func shutDown() {
        stopping = true
        for t in tasks.close() { t.abandon(.engineStopped) }
        if isPrimary {
            if let engine { handler.onShutdown(engine) }
            afterShutdown?()
        } else {
            engine?.stop()  // a handler's .shutdown on any loop stops the whole engine
        }
        for fd in 0..<tableCapacity {
            guard let r = table[fd] else { continue }
            switch r.pointee.phase {
            case .open, .closing: finishClose(r, reason: r.pointee.closeReason)
            case .connecting: failConnect(r, .engineStopped)
            case .free: break
            }
        }
        for i in listeners.indices where !acceptingStopped || listeners[i].address.network.isDatagram { listeners[i].close() }
        if signalFD >= 0 { Sys.close(signalFD); signalFD = -1 }
        timers.removeAll()
    }

    // MARK: records

    /// The record for `id` if that connection is still the one in the slot.
    @inline(__always)
    func record(_ id: ConnID) -> UnsafeMutablePointer<ConnRecord>? {
        guard id.fd >= 0, Int(id.fd) < tableCapacity, let r = table[Int(id.fd)],
              r.pointee.generation == id.generation, r.pointee.phase != .free else { return nil }
        return r
    }

    /// The traffic counters of listener group `group` (the no-group block for -1 or unknown).
    @inline(__always)
    func groupCounters(_ group: Int) -> UnsafeMutablePointer<gnet_loop_counters_t> {
        groupCounters[group >= 0 && group < groupCounters.count - 1 ? group : groupCounters.count - 1]
    }

    /// A fresh record for descriptor `fd`, with a new generation.
    func claimRecord(fd: Int32, kind: ConnKind, phase: ConnPhase, listener: Int, group adoptedGroup: Int? = nil) -> UnsafeMutablePointer<ConnRecord> {
        let i = Int(fd)
        if i >= tableCapacity {
            var newCapacity = tableCapacity
            while newCapacity <= i { newCapacity *= 2 }
            let t = UnsafeMutablePointer<UnsafeMutablePointer<ConnRecord>?>.allocate(capacity: newCapacity)
            t.moveInitialize(from: table, count: tableCapacity)
            (t + tableCapacity).initialize(repeating: nil, count: newCapacity - tableCapacity)
            table.deallocate()
            table = t
            tableCapacity = newCapacity
        }
        let r: UnsafeMutablePointer<ConnRecord>
        if let existing = table[i] {
            r = existing
        } else {
            r = .allocate(capacity: 1)
            r.initialize(to: ConnRecord())
            table[i] = r
        }
        r.pointee.fd = fd
        r.pointee.generation &+= 1
        r.pointee.phase = phase
        r.pointee.kind = kind
        r.pointee.listener = listener
        r.pointee.edgeTriggered = options.edgeTriggered
        r.pointee.lastActive = now
        let group = adoptedGroup ?? (listener >= 0 && listener < listeners.count ? listeners[listener].group : -1)
        r.pointee.group = group
        r.pointee.groupCounters = groupCounters(group)
        if group >= 0 && group < groupLimits.count {
            r.pointee.writeCap = groupLimits[group].writeCap
            r.pointee.idleNanos = groupLimits[group].idleNanos
            r.pointee.inboundCap = kind == .tcp || kind == .unix ? groupLimits[group].inboundCap : 0
        } else {
            r.pointee.writeCap = writeCap
            r.pointee.idleNanos = idleNanos
            // Streams only: a datagram is read whole or not at all.
            r.pointee.inboundCap = kind == .tcp || kind == .unix ? max(0, options.maxInboundBuffered) : 0
        }
        return r
    }

    // MARK: callbacks

    @inline(__always)
    func conn(_ r: UnsafeMutablePointer<ConnRecord>) -> Conn { Conn(record: r, generation: r.pointee.generation, loop: self) }

    @inline(__always)
    func deliverTraffic(_ r: UnsafeMutablePointer<ConnRecord>) {
        // Nothing is kept in a register across the callback for the input limit: what the
        // handler was offered goes in the record (only when there is a limit).
        if r.pointee.inboundCap > 0 { r.pointee.inboundOffered = r.inboundBuffered }
        callbackDepth &+= 1
        let action = handler.onTraffic(conn(r))
        callbackDepth &-= 1
        if r.pointee.pendingCount > 0 {
            if r.isStream, let p = r.pointee.pendingStart {
                r.pointee.inbound.append(UnsafeRawBufferPointer(start: p, count: r.pointee.pendingCount), pool: pool)
            }
            r.pointee.pendingCount = 0
        }
        r.pointee.pendingStart = nil
        r.pointee.inbound.releaseIfEmpty(pool: pool)
        if r.pointee.inboundCap > 0 { boundInput(r, offered: r.pointee.inboundOffered) }
        after(r, action)
    }

    /// The input limit, after a callback was offered `offered` bytes: at the limit, a handler
    /// that consumed some gets another turn with the rest (reading paused), one that consumed
    /// nothing is closed with `.inboundBufferFull` (unless its full output paused reading);
    /// below it, paused reading resumes.
    func boundInput(_ r: UnsafeMutablePointer<ConnRecord>, offered: Int) {
        guard r.pointee.phase == .open, !r.pointee.closeRequested else { return }
        let left = r.inboundBuffered
        if left < r.pointee.inboundCap {
            if r.pointee.inboundFull {
                r.pointee.inboundFull = false
                updateInterest(r)
                schedule(r, read: true)  // edge-triggered sockets get no new edge for old bytes
            }
            return
        }
        let waitingToWrite = r.pointee.readPaused || r.pointee.wantWritable
        if left >= offered && !waitingToWrite {
            gnet_counter_add(&counters.pointee.errors, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
            requestClose(r, reason: .inboundBufferFull)
            return
        }
        if !r.pointee.inboundFull {
            r.pointee.inboundFull = true
            updateInterest(r)
        }
        if !waitingToWrite { schedule(r, read: false) }
    }

    /// Applies a callback's action and any closes it requested.
    @inline(__always)
    func after(_ r: UnsafeMutablePointer<ConnRecord>, _ action: Action) {
        switch action {
        case .none: break
        case .close: if r.isStream { requestClose(r, reason: nil) }
        case .shutdown: stopping = true
        }
        if !deferredCloses.isEmpty && callbackDepth == 0 { runDeferredCloses() }
    }

    func runDeferredCloses() {
        guard callbackDepth == 0 else { return }
        var i = 0
        while i < deferredCloses.count {
            if let r = record(deferredCloses[i]), r.pointee.closeRequested {
                r.pointee.closeRequested = false
                beginClose(r, reason: r.pointee.closeReason)
            }
            i += 1
        }
        deferredCloses.removeAll(keepingCapacity: true)
    }

    /// Asks for a connection to close: at once when no callback is running, else when the
    /// outermost callback returns. Graceful: buffered outbound bytes are flushed first.
    func requestClose(_ r: UnsafeMutablePointer<ConnRecord>, reason: GnetError?) {
        guard r.isOpen || r.pointee.phase == .connecting else { return }
        if r.pointee.closeRequested { return }
        if r.pointee.phase == .closing {
            if reason != nil { finishClose(r, reason: reason) }  // an error overrides a graceful close
            return
        }
        if callbackDepth > 0 {
            r.pointee.closeRequested = true
            r.pointee.closeReason = reason
            deferredCloses.append(r.id)
        } else {
            beginClose(r, reason: reason)
        }
    }

    /// Queues a connection for another turn next iteration.
    func schedule(_ r: UnsafeMutablePointer<ConnRecord>, read: Bool) {
        if read { r.pointee.readPending = true } else { r.pointee.turnWanted = true }
        if r.pointee.scheduled { return }
        r.pointee.scheduled = true
        scheduled.append(r.id)
    }
}

/// Runs `body` with raw views of `parts`, without copying them.
func withRawBuffers<R>(_ parts: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) -> R) -> R {
    var views: [UnsafeRawBufferPointer] = []
    views.reserveCapacity(parts.count)
    func step(_ i: Int) -> R {
        if i == parts.count { return body(views) }
        return parts[i].withUnsafeBytes { b in
            views.append(b)
            return step(i + 1)
        }
    }
    return step(0)
}
