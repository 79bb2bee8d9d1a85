#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Outbound connections: dialling without blocking the loop, and enrolling sockets opened
/// elsewhere. Both end up as ordinary connections with the same handler callbacks.
extension EventLoop {
    /// Starts connecting to `address` (loop thread only). `onOpen` fires once connected; a
    /// connect that fails or exceeds `timeout` fires `onClose` with the error instead.
    /// Names other than `localhost` are resolved with `getaddrinfo`, which blocks: pass numeric
    /// addresses from inside a loop.
    @discardableResult
    public func dial(_ address: NetworkAddress, context: AnyObject? = nil, timeout: Duration = .seconds(10)) throws(GnetError) -> ConnID {
        let target = try address.resolve()
        let type = address.network.isStream ? gnet_SOCK_STREAM() : gnet_SOCK_DGRAM()
        let fd: Int32
        do throws(SystemError) { fd = try Sys.socket(target.family, type, 0) } catch { throw .system(error) }
        let connected: Bool
        do throws(SystemError) {
            if let dev = options.bindToDevice, gnet_bind_to_device(fd, dev) < 0 { throw Sys.fail("setsockopt(SO_BINDTODEVICE)") }
            var storage = target.storage
            connected = try Sys.connect(fd, &storage, target.length)
        } catch {
            Sys.close(fd)
            throw .system(error)
        }
        let kind: ConnKind = address.network == .unix ? .unix : (address.network.isStream ? .tcp : .udpConnected)
        guard let r = open(fd: fd, kind: kind, listener: -1, phase: connected ? .open : .connecting,
                           remote: target, context: context) else { throw .engineStopped }
        let id = r.id
        if !connected {
            if timers.isEmpty { now = gnet_monotonic_ns() }
            timers.schedule(at: now + max(1, timeout.nanoseconds), .connectDeadline(id))
        }
        return id
    }

    /// Takes an already connected stream socket into the loop (loop thread only); `onOpen` fires.
    /// The loop owns `fd` from now on and closes it with the connection.
    @discardableResult
    public func enroll(fd: Int32, context: AnyObject? = nil) throws(GnetError) -> ConnID {
        let domain: Int32
        let type: Int32
        do throws(SystemError) {
            try Sys.setNonBlocking(fd)
            domain = try Sys.getOption(fd, SOL_SOCKET, SO_DOMAIN)
            type = try Sys.getOption(fd, SOL_SOCKET, SO_TYPE)
        } catch { throw .system(error) }
        let kind: ConnKind
        if type == gnet_SOCK_DGRAM() { kind = .udpConnected } else { kind = domain == AF_UNIX ? .unix : .tcp }
        guard let r = open(fd: fd, kind: kind, listener: -1, phase: .open, context: context) else { throw .engineStopped }
        return r.id
    }

    func finishConnect(_ r: UnsafeMutablePointer<ConnRecord>) {
        let err = gnet_socket_error(r.pointee.fd)
        if err != 0 {
            failConnect(r, .system(SystemError("connect", errno: err)))
            return
        }
        r.pointee.phase = .open
        r.pointee.edgeTriggered = options.edgeTriggered
        let interest = options.edgeTriggered ? Interest.readable | Interest.writable | Interest.edgeTriggered : Interest.readable
        do throws(SystemError) {
            try poller.modify(r.pointee.fd, interest: interest, token: PollToken.connection(r.pointee.fd))
            r.pointee.interest = interest
        } catch {
            failConnect(r, .system(error))
            return
        }
        opened(r)
    }

    /// A dial that never connected: `onClose` with the reason, then the slot is freed.
    func failConnect(_ r: UnsafeMutablePointer<ConnRecord>, _ error: GnetError) {
        guard r.pointee.phase == .connecting else { return }
        r.pointee.phase = .open  // visible to the handler as a connection that is ending
        finishClose(r, reason: error)
    }

    func setKeepAlive(_ fd: Int32, _ ka: KeepAlive) throws(GnetError) {
        let idle = ka.idle.nanoseconds / 1_000_000_000
        let interval = ka.interval.nanoseconds / 1_000_000_000
        guard idle > 0, interval > 0, ka.count > 0 else {
            throw .invalidArgument("keep-alive idle, interval and count must be at least 1s, 1s and 1")
        }
        do throws(SystemError) {
            try Sys.setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
            try Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, Int32(clamping: idle))
            try Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, Int32(clamping: interval))
            try Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, Int32(clamping: ka.count))
        } catch { throw .system(error) }
    }
}
