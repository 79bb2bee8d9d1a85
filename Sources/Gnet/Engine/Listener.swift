#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Per-listener overrides of the engine-wide connection limits (a daemon serves several
/// services, each with its own limits, from one loop).
public struct ConnectionLimits: Sendable, Equatable {
    /// Soft cap of a connection's outbound buffer (normalised as `Options.writeBufferCap`).
    public var writeBufferCap: Int
    /// Close connections silent for this long; nil = never.
    public var idleTimeout: Duration?
    /// Most connections of this listener group one loop holds; 0 = no limit.
    public var maxConnections: Int
    /// Most unconsumed input bytes per connection (as `Options.maxInboundBuffered`); 0 = no limit.
    public var maxInboundBuffered: Int

    /// Limits for one listener group; zero values as documented per field.
    public init(writeBufferCap: Int = 0, idleTimeout: Duration? = nil, maxConnections: Int = 0, maxInboundBuffered: Int = 0) {
        self.writeBufferCap = writeBufferCap; self.idleTimeout = idleTimeout; self.maxConnections = maxConnections
        self.maxInboundBuffered = maxInboundBuffered
    }
}

/// A bound listening socket (TCP or Unix stream) or a bound UDP socket.
///
/// A Unix socket path is removed before bind (a stale file from a crash must not block start-up)
/// and again when the listener that created it closes, if the path is still the file it bound.
public struct Listener: Sendable {
    /// The socket descriptor.
    public let fd: Int32
    /// The address as configured.
    public let address: NetworkAddress
    /// The address actually bound (port 0 comes back as the kernel's choice).
    public let boundAddress: SocketAddress
    /// The Unix socket file this listener created, which closing it removes (only while the
    /// path is still that file).
    package let socketFile: SocketFile?
    /// epoll interest flags beyond EPOLLIN (e.g. EPOLLEXCLUSIVE for a socket shared by processes).
    public var extraInterest: UInt32 = 0
    /// Listeners with the same group share `limits` and one connection count (a service with
    /// several addresses). Connections report it as `Conn.listenerGroup`.
    public var group = 0
    /// Limits for connections accepted here, overriding the engine's options; nil uses them.
    public var limits: ConnectionLimits? = nil

    /// Before binding a Unix socket: a socket file left behind by a process that is gone is
    /// removed; a socket someone still accepts on is `EADDRINUSE` (two servers never steal each
    /// other's path), and a path that is not a socket (a file, a directory) is `EEXIST` — never
    /// deleted.
    static func clearStalePath(_ path: String) throws(SystemError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }  // nothing there
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw SystemError("bind", errno: EEXIST) }
        if SocketFile.isServed(path) { throw SystemError("bind", errno: EADDRINUSE) }
        _ = unlink(path)
    }

    /// Binds `address` with the socket options in `options`.
    public static func bind(_ address: NetworkAddress, options: Options = Options()) throws(GnetError) -> Listener {
        let target = try address.resolve()
        let type = address.network.isStream ? gnet_SOCK_STREAM() : gnet_SOCK_DGRAM()
        let fd: Int32
        do throws(SystemError) { fd = try Sys.socket(target.family, type, 0) } catch { throw .system(error) }
        do throws(SystemError) {
            try setOptions(fd, target, address, options)
            if target.family == AF_UNIX { try clearStalePath(address.path) }
            var storage = target.storage
            try Sys.bind(fd, &storage, target.length)
            if address.network.isStream {
                try Sys.listen(fd, options.listenBacklog)
            } else if let iface = options.multicastInterface {
                try joinMulticast(fd, target, interface: iface)
            }
        } catch {
            Sys.close(fd)
            throw .system(error)
        }
        let bound = Sys.localAddress(fd) ?? target
        let file = target.family == AF_UNIX ? SocketFile(boundAt: address.path) : nil
        return Listener(fd: fd, address: address, boundAddress: bound, socketFile: file)
    }

    /// Sets what `options` asks of a socket for `address` before its bind (what decides whether
    /// the bind may share the address with other sockets, too).
    static func setOptions(_ fd: Int32, _ target: SocketAddress, _ address: NetworkAddress, _ options: Options) throws(SystemError) {
        if target.family != AF_UNIX {
            if options.reuseAddr { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
            if options.reusePort { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if target.family == AF_INET6 {
                let v6only: Int32 = (address.network == .tcp6 || address.network == .udp6) ? 1 : 0
                try Sys.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, v6only)
            }
        }
        if options.socketReceiveBuffer > 0 { try Sys.setOption(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: options.socketReceiveBuffer)) }
        if options.socketSendBuffer > 0 { try Sys.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: options.socketSendBuffer)) }
        if let dev = options.bindToDevice, gnet_bind_to_device(fd, dev) < 0 { throw Sys.fail("setsockopt(SO_BINDTODEVICE)") }
    }

    /// Adopts an already bound socket (inherited from a supervisor or systemd). The listener does
    /// not remove a Unix path it did not create.
    public static func adopt(fd: Int32, address: NetworkAddress) throws(GnetError) -> Listener {
        do throws(SystemError) { try Sys.setNonBlocking(fd) } catch { throw .system(error) }
        let bound = Sys.localAddress(fd) ?? (try? address.resolve()) ?? SocketAddress.unix("?")!
        return Listener(fd: fd, address: address, boundAddress: bound, socketFile: nil)
    }

    init(fd: Int32, address: NetworkAddress, boundAddress: SocketAddress, socketFile: SocketFile?) {
        self.fd = fd; self.address = address; self.boundAddress = boundAddress; self.socketFile = socketFile
    }

    /// The bound address in the configured scheme, e.g. `tcp://127.0.0.1:40123`.
    public var boundNetworkAddress: NetworkAddress {
        if address.network == .unix { return address }
        var host = boundAddress.description
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        return NetworkAddress(address.network, host: host, port: boundAddress.port)
    }

    /// Closes the socket and removes a Unix path this listener created, unless another file
    /// has taken the path since (for a listener that never went into an engine; an engine
    /// closes its own).
    public func close() {
        Sys.close(fd)
        socketFile?.remove()
    }

    private static func joinMulticast(_ fd: Int32, _ group: SocketAddress, interface: String) throws(SystemError) {
        guard group.family == AF_INET else { return }
        var s = group.storage
        let addr = withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr } }
        guard (UInt32(bigEndian: addr.s_addr) >> 28) == 0xE else { return }  // not 224.0.0.0/4
        var mreq = ip_mreqn()
        mreq.imr_multiaddr = addr
        mreq.imr_ifindex = Int32(if_nametoindex(interface))
        if setsockopt(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &mreq, socklen_t(MemoryLayout<ip_mreqn>.size)) < 0 {
            throw Sys.fail("setsockopt(IP_ADD_MEMBERSHIP)")
        }
    }
}
