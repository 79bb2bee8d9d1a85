#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// The per-connection I/O paths of a loop: read, write (direct first, buffer the remainder,
/// watch writability only while something is buffered), flush, close.
extension EventLoop {
    /// One connection's readiness, in this order: a connection still connecting finishes its
    /// connect; writability (or an error with output pending) flushes buffered output first,
    /// so answers already owed leave before new input is read, then `onWritable` if the handler
    /// asked for it; readability (or an error or hang-up) reads and calls `onTraffic`, unless
    /// reading is paused (output at its cap, input at its limit, closing, or the peer already
    /// done), when a hang-up alone ends the connection. After every callback the record may have
    /// been closed and reused: the generation is checked before going on.
    func connectionEvent(fd: Int32, events: UInt32) {
        guard Int(fd) < tableCapacity, let r = table[Int(fd)] else { return }
        switch r.pointee.phase {
        case .free:
            return
        case .connecting:
            finishConnect(r)
            return
        case .open, .closing:
            break
        }
        let bad = events & (Interest.error | Interest.hangUp) != 0
        if events & Interest.writable != 0 || (bad && !r.pointee.outbound.isEmpty) {
            let generation = r.pointee.generation
            if !r.pointee.outbound.isEmpty { flush(r) }
            guard r.pointee.phase != .free, r.pointee.generation == generation else { return }
            if r.pointee.wantWritable && r.pointee.outbound.isEmpty && r.pointee.phase == .open {
                r.pointee.wantWritable = false
                writable(r)
                guard r.pointee.phase != .free, r.pointee.generation == generation else { return }
                closeIfPeerDone(r)
                guard r.pointee.phase != .free, r.pointee.generation == generation else { return }
            }
        }
        if events & Interest.readable != 0 || bad {
            if r.pointee.readPaused || r.pointee.inboundFull || r.pointee.phase == .closing || r.pointee.peerClosed {
                // Not reading now; a hang-up still has to end the connection.
                if bad && !(events & Interest.readable != 0) { finishClose(r, reason: .endOfStream) }
                return
            }
            readStream(r)
        }
    }

    /// Reads a stream (or connected datagram) socket and hands the bytes to the handler.
    /// Level-triggered: one read per readiness. Edge-triggered: until EAGAIN, or the chunk
    /// limit, after which the connection gets another turn next iteration.
    /// Returns whether the handler got `onTraffic`.
    @discardableResult
    func readStream(_ r: UnsafeMutablePointer<ConnRecord>) -> Bool {
        let fd = r.pointee.fd
        let generation = r.pointee.generation
        var total = 0
        var delivered = false
        repeat {
            let result: IOResult<Int>
            do throws(SystemError) {
                if r.pointee.inboundCap > 0 {
                    // Never past the input limit: at most the room left under it.
                    guard let room = roomUnderLimit(r) else { return delivered }
                    result = try Sys.read(fd, readBuffer, room)
                } else {
                    result = try Sys.read(fd, readBuffer, readCapacity)
                }
            } catch {
                gnet_counter_add(&counters.pointee.errors, 1)
                gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
                finishClose(r, reason: .system(error))
                return delivered
            }
            gnet_counter_add(&counters.pointee.read_calls, 1)
            switch result {
            case .wouldBlock:
                return delivered
            case .processed(0) where r.pointee.kind != .udpConnected:
                if (r.pointee.scheduled && r.inboundBuffered > 0) || r.pointee.wantWritable {
                    // The handler is still at work on what it was sent: it asked (wake) to go on
                    // with bytes it already has, or waits (notifyWritable) to write more of an
                    // answer. Let it finish, then close (`closeIfPeerDone`); stop reading meanwhile.
                    r.pointee.peerClosed = true
                    updateInterest(r)
                } else {
                    // Answers still buffered go out first: a peer that half-closed may be reading.
                    beginClose(r, reason: .endOfStream)
                }
                return delivered
            case .processed(let n):
                gnet_counter_add(&counters.pointee.bytes_in, UInt64(n))
                gnet_counter_add(&r.pointee.groupCounters.pointee.bytes_in, UInt64(n))
                total += n
                r.pointee.lastActive = now
                r.pointee.pendingStart = readBuffer
                r.pointee.pendingCount = n
                deliverTraffic(r)
                delivered = true
            }
            // Level-triggered sockets read once per readiness: that test comes first.
            guard r.pointee.edgeTriggered, r.pointee.generation == generation, r.pointee.phase == .open,
                  !r.pointee.readPaused, !r.pointee.inboundFull else { return delivered }
        } while options.edgeTriggeredChunk <= 0 || total < options.edgeTriggeredChunk
        schedule(r, read: true)
        return delivered
    }

    /// The bytes a read may take without passing the connection's input limit; nil at the
    /// limit, after pausing reading until the handler has had a turn with what it holds.
    @inline(never)
    private func roomUnderLimit(_ r: UnsafeMutablePointer<ConnRecord>) -> Int? {
        let room = min(readCapacity, r.pointee.inboundCap - r.inboundBuffered)
        if room > 0 { return room }
        r.pointee.inboundFull = true
        updateInterest(r)
        schedule(r, read: false)
        return nil
    }

    // MARK: writing

    /// Writes `parts` in order: straight to the socket when nothing is buffered, the remainder
    /// into the outbound buffer. Returns the byte count taken (all of it).
    func write(_ r: UnsafeMutablePointer<ConnRecord>, _ parts: [UnsafeRawBufferPointer]) throws(GnetError) -> Int {
        if parts.count == 1 { return try write(r, parts[0]) }
        var total = 0
        for p in parts { total += p.count }
        if !r.isStream {
            // A datagram is one message: join the parts.
            if total > scratchCapacity { growScratch(total) }
            var at = 0
            for p in parts where p.count > 0 {
                (scratch + at).copyMemory(from: p.baseAddress!, byteCount: p.count)
                at += p.count
            }
            return try write(r, UnsafeRawBufferPointer(start: scratch, count: total))
        }
        try checkWritable(r)
        var written = 0
        if r.pointee.outbound.isEmpty && total > 0 {
            written = try withIOVecs(parts) { iov, n throws(GnetError) in try syscallWrite(r) { () throws(SystemError) in try Sys.writev(r.pointee.fd, iov, n) } }
        }
        if written < total {
            var skip = written
            for p in parts {
                if skip >= p.count { skip -= p.count; continue }
                append(r, UnsafeRawBufferPointer(rebasing: p[skip...]))
                skip = 0
            }
            bufferedMore(r)
        }
        return total
    }

    /// Sends up to `count` bytes of `file` from `offset` with sendfile(2), straight from the page
    /// cache, when nothing is buffered ahead of it. Returns the bytes sent (0 when the socket is
    /// full or other output is still buffered: ask for `notifyWritable` and call again).
    func sendFile(_ r: UnsafeMutablePointer<ConnRecord>, _ file: Int32, offset: Int, count: Int) throws(GnetError) -> Int {
        guard r.pointee.phase == .open, !r.pointee.closeRequested else { throw .connectionClosed }
        guard r.isStream else { throw .unsupportedOperation("sendFile on a datagram connection") }
        guard r.pointee.outbound.isEmpty, count > 0 else { return 0 }
        var endOfFile = false
        let n = try syscallWrite(r) { () throws(SystemError) in
            let result = try Sys.sendfile(r.pointee.fd, file, offset: offset, count: count)
            endOfFile = result == .processed(0)
            return result
        }
        // sendfile moves nothing only at the end of the file (a full socket is EAGAIN).
        if endOfFile { throw .endOfFile }
        return n
    }

    /// Writes three pieces in order (a frame's prefix, payload and suffix) with one writev and
    /// no allocation; like `write(_:_:)` otherwise.
    func write(_ r: UnsafeMutablePointer<ConnRecord>, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer,
               _ c: UnsafeRawBufferPointer) throws(GnetError) -> Int {
        let total = a.count + b.count + c.count
        if !r.isStream {
            if total > scratchCapacity { growScratch(total) }
            if a.count > 0 { scratch.copyMemory(from: a.baseAddress!, byteCount: a.count) }
            if b.count > 0 { (scratch + a.count).copyMemory(from: b.baseAddress!, byteCount: b.count) }
            if c.count > 0 { (scratch + a.count + b.count).copyMemory(from: c.baseAddress!, byteCount: c.count) }
            return try write(r, UnsafeRawBufferPointer(start: scratch, count: total))
        }
        try checkWritable(r)
        var written = 0
        if r.pointee.outbound.isEmpty && total > 0 {
            written = try syscallWrite(r) { () throws(SystemError) in try Sys.writev(r.pointee.fd, a, b, c) }
        }
        if written < total {
            var skip = written
            for i in 0..<3 {
                let p = i == 0 ? a : (i == 1 ? b : c)
                if skip >= p.count { skip -= p.count; continue }
                append(r, UnsafeRawBufferPointer(rebasing: p[skip...]))
                skip = 0
            }
            bufferedMore(r)
        }
        return total
    }

    /// The single-buffer write path.
    @inline(__always)
    func write(_ r: UnsafeMutablePointer<ConnRecord>, _ bytes: UnsafeRawBufferPointer) throws(GnetError) -> Int {
        let count = bytes.count
        guard let base = bytes.baseAddress, count > 0 else {
            try checkWritable(r)
            return 0
        }
        if !r.isStream { return try sendDatagram(r, bytes) }
        try checkWritable(r)
        if !r.pointee.outbound.isEmpty {
            append(r, bytes)
            bufferedMore(r)
            return count
        }
        let written = try syscallWrite(r) { () throws(SystemError) in try Sys.write(r.pointee.fd, base, count) }
        if written < count {
            append(r, UnsafeRawBufferPointer(start: base + written, count: count - written))
            bufferedMore(r)
        }
        return count
    }

    @inline(__always)
    private func checkWritable(_ r: UnsafeMutablePointer<ConnRecord>) throws(GnetError) {
        guard r.pointee.phase == .open, !r.pointee.closeRequested else { throw .connectionClosed }
        if r.pointee.outbound.count >= r.pointee.writeCap { throw .outboundBufferFull }
    }

    /// One write syscall with the bookkeeping; a failure closes the connection (deferred when
    /// inside a callback) and is rethrown.
    @inline(__always)
    private func syscallWrite(_ r: UnsafeMutablePointer<ConnRecord>, _ call: () throws(SystemError) -> IOResult<Int>) throws(GnetError) -> Int {
        gnet_counter_add(&counters.pointee.write_calls, 1)
        do throws(SystemError) {
            switch try call() {
            case .processed(let n):
                gnet_counter_add(&counters.pointee.bytes_out, UInt64(n))
                gnet_counter_add(&r.pointee.groupCounters.pointee.bytes_out, UInt64(n))
                r.pointee.sentTotal &+= UInt64(n)
                return n
            case .wouldBlock:
                return 0
            }
        } catch {
            gnet_counter_add(&counters.pointee.errors, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
            r.pointee.outbound.release(pool: pool)
            requestClose(r, reason: .system(error))
            throw .system(error)
        }
    }

    private func sendDatagram(_ r: UnsafeMutablePointer<ConnRecord>, _ bytes: UnsafeRawBufferPointer) throws(GnetError) -> Int {
        guard r.pointee.phase == .open else { throw .connectionClosed }
        var to = r.pointee.remote
        if r.pointee.kind == .udpListener && to == nil { throw .invalidAddress("no peer address") }
        let result: IOResult<Int>
        do throws(SystemError) {
            if r.pointee.kind == .udpListener, let len = to?.length {
                result = try Sys.sendto(r.pointee.fd, bytes.baseAddress!, bytes.count, &to!.storage, len)
            } else {
                result = try Sys.sendto(r.pointee.fd, bytes.baseAddress!, bytes.count, nil, 0)
            }
        } catch {
            gnet_counter_add(&counters.pointee.errors, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
            throw .system(error)
        }
        gnet_counter_add(&counters.pointee.write_calls, 1)
        guard case .processed(let n) = result else { throw .system(SystemError("sendto", errno: EAGAIN)) }
        gnet_counter_add(&counters.pointee.bytes_out, UInt64(n))
        gnet_counter_add(&counters.pointee.datagrams_out, 1)
        gnet_counter_add(&r.pointee.groupCounters.pointee.bytes_out, UInt64(n))
        gnet_counter_add(&r.pointee.groupCounters.pointee.datagrams_out, 1)
        return n
    }

    @inline(__always)
    private func append(_ r: UnsafeMutablePointer<ConnRecord>, _ bytes: UnsafeRawBufferPointer) {
        r.pointee.outbound.append(bytes, pool: pool)
        r.pointee.bufferedTotal &+= UInt64(bytes.count)
    }

    /// After bytes were buffered: watch writability, and stop reading at the cap.
    private func bufferedMore(_ r: UnsafeMutablePointer<ConnRecord>) {
        if r.pointee.outbound.count >= r.pointee.writeCap && !r.pointee.readPaused {
            r.pointee.readPaused = true
        }
        updateInterest(r)
    }

    /// Sends what the outbound buffer holds with one writev; fires completions, resumes reading
    /// below half the cap, finishes a pending close once empty.
    func flush(_ r: UnsafeMutablePointer<ConnRecord>) {
        let (a, b) = r.pointee.outbound.segments()
        let n: Int
        do throws(GnetError) {
            n = try syscallWrite(r) { () throws(SystemError) in try Sys.writev(r.pointee.fd, a, b) }
        } catch {
            return  // syscallWrite closed it
        }
        r.pointee.outbound.consume(n)
        r.pointee.flushedTotal &+= UInt64(n)
        if !r.pointee.completions.isEmpty { fireCompletions(r) }
        if r.pointee.outbound.isEmpty {
            r.pointee.outbound.releaseIfEmpty(pool: pool)
            if r.pointee.phase == .closing {
                finishClose(r, reason: r.pointee.closeReason)
                return
            }
        }
        if r.pointee.readPaused && r.pointee.outbound.count <= r.pointee.writeCap / 2 {
            r.pointee.readPaused = false
            // Input the handler left while it waited for room is handed to it again.
            r.pointee.resumeTraffic = r.inboundBuffered > 0
            writable(r)
            guard r.pointee.phase == .open else { return }
            // Bytes may have arrived while reading was off.
            schedule(r, read: true)
        } else {
            updateInterest(r)
        }
    }

    /// Updates the epoll interest for a connection that may write again, then tells the handler.
    private func writable(_ r: UnsafeMutablePointer<ConnRecord>) {
        updateInterest(r)
        callbackDepth &+= 1
        let action = handler.onWritable(conn(r))
        callbackDepth &-= 1
        // Input consumed while writing may take it back under its limit.
        if r.pointee.inboundFull && r.pointee.phase == .open && r.inboundBuffered < r.pointee.inboundCap {
            r.pointee.inboundFull = false
            updateInterest(r)
            schedule(r, read: true)
        }
        after(r, action)
    }

    private func fireCompletions(_ r: UnsafeMutablePointer<ConnRecord>) {
        let flushed = r.pointee.flushedTotal
        var done = 0
        while done < r.pointee.completions.count && r.pointee.completions[done].flushedTarget <= flushed { done += 1 }
        guard done > 0 else { return }
        let ready = r.pointee.completions[0..<done]
        r.pointee.completions.removeFirst(done)
        for c in ready { c.callback(nil) }
    }

    /// Registers the epoll interest the connection needs now: read unless paused or closing,
    /// write only while bytes are buffered. Edge-triggered sockets keep both for life.
    func updateInterest(_ r: UnsafeMutablePointer<ConnRecord>) {
        if r.pointee.edgeTriggered { return }
        var want: UInt32 = 0
        if !r.pointee.readPaused && !r.pointee.inboundFull && !r.pointee.peerClosed && r.pointee.phase == .open { want |= Interest.readable }
        if !r.pointee.outbound.isEmpty || r.pointee.wantWritable { want |= Interest.writable }
        if want == r.pointee.interest { return }
        do throws(SystemError) {
            try poller.modify(r.pointee.fd, interest: want, token: PollToken.connection(r.pointee.fd))
            r.pointee.interest = want
        } catch {
            gnet_counter_add(&counters.pointee.errors, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
            requestClose(r, reason: .system(error))
        }
    }

    // MARK: closing

    /// After the peer closed its side while the handler was still at work: closes (flushing
    /// what is buffered) once the handler neither asks for another turn with input left nor
    /// waits to write more.
    func closeIfPeerDone(_ r: UnsafeMutablePointer<ConnRecord>) {
        guard r.pointee.peerClosed, r.pointee.phase == .open, !r.pointee.wantWritable,
              !r.pointee.scheduled || r.inboundBuffered == 0 else { return }
        beginClose(r, reason: .endOfStream)
    }

    /// Starts closing: with bytes still buffered the connection stops reading and waits for
    /// them to drain (at most `closeFlushTimeout`); otherwise it closes at once.
    func beginClose(_ r: UnsafeMutablePointer<ConnRecord>, reason: GnetError?) {
        if r.pointee.phase == .connecting { failConnect(r, reason ?? .connectionClosed); return }
        guard r.pointee.phase == .open else { return }
        if reason == nil || reason == .endOfStream, !r.pointee.outbound.isEmpty && r.isStream {
            r.pointee.phase = .closing
            r.pointee.closeReason = reason
            updateInterest(r)
            timers.schedule(at: gnet_monotonic_ns() + options.closeFlushTimeout.nanoseconds, .closeDeadline(r.id))
            if timers.count == 1 { now = gnet_monotonic_ns() }
            return
        }
        finishClose(r, reason: reason)
    }

    /// Closes now: one last best-effort flush, `onClose` (the descriptor is still open), then
    /// deregister, close, and free the slot for the next connection.
    func finishClose(_ r: UnsafeMutablePointer<ConnRecord>, reason: GnetError?) {
        guard r.isOpen, r.pointee.kind != .udpListener else { return }
        let fd = r.pointee.fd
        if !r.pointee.outbound.isEmpty && r.isStream, reason == nil || reason == .endOfStream {
            let (a, b) = r.pointee.outbound.segments()
            _ = try? Sys.writev(fd, a, b)
        }
        r.pointee.phase = .closing
        r.pointee.closeRequested = true  // no further closes while onClose runs
        callbackDepth &+= 1
        let action = handler.onClose(conn(r), error: reason)
        callbackDepth &-= 1
        if r.isStream || r.pointee.kind == .udpConnected {
            poller.deregister(fd)
            Sys.close(fd)
            openConnections -= 1
            if r.pointee.group >= 0 && r.pointee.group < groupConnections.count { groupConnections[r.pointee.group] -= 1 }
            gnet_counter_sub(&counters.pointee.connections_open, 1)
            gnet_counter_add(&counters.pointee.connections_closed, 1)
            gnet_counter_sub(&r.pointee.groupCounters.pointee.connections_open, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.connections_closed, 1)
        }
        let pending = r.pointee.completions
        release(r)
        for c in pending { c.callback(.connectionClosed) }
        if action == .shutdown { stopping = true }
        runDeferredCloses()
    }

    /// Returns a record's resources and marks the slot free (a new generation comes with reuse).
    func release(_ r: UnsafeMutablePointer<ConnRecord>) {
        r.pointee.inbound.release(pool: pool)
        r.pointee.outbound.release(pool: pool)
        r.pointee.completions.removeAll()
        r.pointee.context = nil
        r.pointee.remote = nil
        r.pointee.phase = .free
        r.pointee.interest = 0
        r.pointee.readPaused = false
        r.pointee.inboundFull = false
        r.pointee.scheduled = false
        r.pointee.readPending = false
        r.pointee.turnWanted = false
        r.pointee.resumeTraffic = false
        r.pointee.wantWritable = false
        r.pointee.peerClosed = false
        r.pointee.closeRequested = false
        r.pointee.closeReason = nil
        r.pointee.pendingStart = nil
        r.pointee.pendingCount = 0
        r.pointee.flushedTotal = 0
        r.pointee.bufferedTotal = 0
        r.pointee.sentTotal = 0
        r.pointee.fd = -1
    }

    func growScratch(_ n: Int) {
        scratch.deallocate()
        scratchCapacity = BufferPool.capacity(for: n)
        scratch = .allocate(byteCount: scratchCapacity, alignment: 16)
    }
}

/// Builds an iovec array on the stack for up to 1024 parts (more are written in later rounds).
@inline(__always)
func withIOVecs<R>(_ parts: [UnsafeRawBufferPointer], _ body: (UnsafePointer<iovec>, Int32) throws(GnetError) -> R) throws(GnetError) -> R {
    let n = min(parts.count, 1024)
    return try withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(n, 1)) { iov throws(GnetError) -> R in
        for i in 0..<n {
            iov[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: parts[i].baseAddress), iov_len: parts[i].count)
        }
        return try body(iov.baseAddress!, Int32(n))
    }
}
