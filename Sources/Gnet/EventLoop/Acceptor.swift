#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Listener events: accepting stream connections (with the per-loop limit and the EMFILE
/// back-off) and receiving UDP datagrams.
extension EventLoop {
    func listenerInterest(_ i: Int) -> UInt32 { Interest.readable | listeners[i].extraInterest }

    func listenerEvent(_ i: Int) {
        guard i < listeners.count else { return }
        if listeners[i].address.network.isStream {
            if !acceptingStopped { accept(i) }  // an event from the same batch as stopAccepting()
        } else {
            receiveDatagrams(i)
        }
    }

    private func accept(_ i: Int) {
        let lfd = listeners[i].fd
        let kind: ConnKind = listeners[i].address.network == .unix ? .unix : .tcp
        for _ in 0..<128 {
            let fd: Int32
            do {
                guard let c = try Sys.acceptNoAddress(lfd) else { return }
                fd = c
            } catch {
                gnet_counter_add(&counters.pointee.errors, 1)
                gnet_counter_add(&groupCounters(listeners[i].group).pointee.errors, 1)
                switch error.errno {
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    pauseAccepting(i, error)
                default:
                    options.logger.log(.warning, "accept on \(listeners[i].address): \(error)")
                }
                return
            }
            let group = listeners[i].group
            if let balancer, distributes[i] {
                let k = balancer.pick(fd)
                if k != index {
                    balancer.handOff(fd, kind: kind, group: group, to: k, from: self)
                    continue
                }
                balancer.kept(k)
            }
            if atLimit(group) {
                // Counted before the close, so a client that sees it closed sees it counted.
                gnet_counter_add(&counters.pointee.connections_rejected, 1)
                gnet_counter_add(&groupCounters(group).pointee.connections_rejected, 1)
                Sys.close(fd)
                continue
            }
            open(fd: fd, kind: kind, listener: i, phase: .open)
        }
    }

    /// Whether listener group `group` holds its most connections on this loop already.
    private func atLimit(_ group: Int) -> Bool {
        let limit = group >= 0 && group < groupLimits.count ? groupLimits[group].maxConnections : options.maxConnections
        return limit > 0 && (group >= 0 && group < groupConnections.count ? groupConnections[group] : openConnections) >= limit
    }

    /// A connection accepted by another loop of the engine and handed here.
    func adopt(_ fd: Int32, kind: ConnKind, group: Int) {
        if stopping || atLimit(group) {
            // Counted before the close, so a client that sees it closed sees it counted.
            gnet_counter_add(&counters.pointee.connections_rejected, 1)
            gnet_counter_add(&groupCounters(group).pointee.connections_rejected, 1)
            Sys.close(fd)
            return
        }
        open(fd: fd, kind: kind, listener: -1, phase: .open, group: group)
    }

    /// Out of descriptors: stop watching the listener for 100 ms instead of spinning on it.
    private func pauseAccepting(_ i: Int, _ error: SystemError) {
        if !loggedAcceptPause {
            options.logger.log(.error, "accept on \(listeners[i].address): \(error); pausing accepts for 100ms (logged once)")
            loggedAcceptPause = true
        }
        poller.deregister(listeners[i].fd)
        now = gnet_monotonic_ns()
        timers.schedule(at: now + 100_000_000, .resumeAccept(i))
    }

    func resumeAccepting(_ i: Int) {
        guard i < listeners.count, !stopping, !acceptingStopped else { return }
        do throws(SystemError) {
            try poller.register(listeners[i].fd, interest: listenerInterest(i), token: PollToken.listener(i))
        } catch {
            options.logger.log(.error, "resuming accepts on \(listeners[i].address): \(error)")
        }
    }

    /// Takes a connected socket into the loop and fires `onOpen` (`.connecting` waits for the
    /// connect to finish first).
    @discardableResult
    func open(fd: Int32, kind: ConnKind, listener: Int, phase: ConnPhase, remote: SocketAddress? = nil,
              context: AnyObject? = nil, group: Int? = nil) -> UnsafeMutablePointer<ConnRecord>? {
        if kind == .tcp { applyTCPOptions(fd) }
        let r = claimRecord(fd: fd, kind: kind, phase: phase, listener: listener, group: group)
        r.pointee.context = context
        r.pointee.remote = remote
        let interest: UInt32
        if phase == .connecting {
            interest = Interest.writable
        } else if options.edgeTriggered {
            interest = Interest.readable | Interest.writable | Interest.edgeTriggered
        } else {
            interest = Interest.readable
        }
        r.pointee.edgeTriggered = options.edgeTriggered && phase != .connecting
        do {
            try poller.register(fd, interest: interest, token: PollToken.connection(fd))
        } catch {
            options.logger.log(.warning, "registering connection: \(error)")
            gnet_counter_add(&counters.pointee.errors, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
            release(r)
            Sys.close(fd)
            return nil
        }
        r.pointee.interest = interest
        openConnections += 1
        if r.pointee.group >= 0 && r.pointee.group < groupConnections.count { groupConnections[r.pointee.group] += 1 }
        gnet_counter_add(&counters.pointee.connections_open, 1)
        gnet_counter_add(&r.pointee.groupCounters.pointee.connections_open, 1)
        if listener >= 0 || group != nil {
            gnet_counter_add(&counters.pointee.connections_accepted, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.connections_accepted, 1)
        }
        if phase == .open { opened(r) }
        return r
    }

    /// A connection is usable: arm the idle timer and tell the handler.
    func opened(_ r: UnsafeMutablePointer<ConnRecord>) {
        if r.pointee.idleNanos > 0 {
            if timers.isEmpty { now = gnet_monotonic_ns() }
            r.pointee.lastActive = now
            timers.schedule(at: now + r.pointee.idleNanos, .idleCheck(r.id))
        }
        callbackDepth &+= 1
        let action = handler.onOpen(conn(r))
        callbackDepth &-= 1
        after(r, action)
    }

    func applyTCPOptions(_ fd: Int32) {
        if options.tcpNoDelay { _ = gnet_set_int_option(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        if let ka = options.tcpKeepAlive { try? setKeepAlive(fd, ka) }
        if options.socketReceiveBuffer > 0 { _ = gnet_set_int_option(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: options.socketReceiveBuffer)) }
        if options.socketSendBuffer > 0 { _ = gnet_set_int_option(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: options.socketSendBuffer)) }
    }

    // MARK: UDP

    /// The record that stands for "the peer of the current datagram" on a UDP listener.
    func datagramRecord(_ i: Int) -> UnsafeMutablePointer<ConnRecord> {
        let fd = listeners[i].fd
        if Int(fd) < tableCapacity, let r = table[Int(fd)], r.pointee.phase == .open, r.pointee.kind == .udpListener { return r }
        let r = claimRecord(fd: fd, kind: .udpListener, phase: .open, listener: i)
        r.pointee.edgeTriggered = false
        return r
    }

    /// Reads up to 64 datagrams; each is one `onTraffic`. Bytes a handler leaves unread are
    /// dropped with the datagram (datagram boundaries are kept, never merged).
    private func receiveDatagrams(_ i: Int) {
        let r = datagramRecord(i)
        let fd = listeners[i].fd
        for _ in 0..<64 {
            var from = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result: IOResult<Int>
            do {
                result = try Sys.recvfrom(fd, readBuffer, readCapacity, &from, &len)
            } catch {
                gnet_counter_add(&counters.pointee.errors, 1)
                gnet_counter_add(&r.pointee.groupCounters.pointee.errors, 1)
                return
            }
            guard case .processed(let n) = result else { return }
            gnet_counter_add(&counters.pointee.read_calls, 1)
            gnet_counter_add(&counters.pointee.bytes_in, UInt64(n))
            gnet_counter_add(&counters.pointee.datagrams_in, 1)
            gnet_counter_add(&r.pointee.groupCounters.pointee.bytes_in, UInt64(n))
            gnet_counter_add(&r.pointee.groupCounters.pointee.datagrams_in, 1)
            r.pointee.remote = SocketAddress(storage: from, length: len)
            r.pointee.pendingStart = readBuffer
            r.pointee.pendingCount = n
            deliverTraffic(r)
            if stopping { return }
        }
    }
}
