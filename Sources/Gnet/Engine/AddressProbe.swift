#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

extension Listener {
    /// Whether a socket of another owner holds `address` (TCP or UDP, a port other than 0), so
    /// that binding it with `SO_REUSEPORT` would silently share its traffic: a probe socket with
    /// the real socket's options (`IPV6_V6ONLY`, device) but without `SO_REUSEPORT` is bound to
    /// it and closed again, and the kernel's `EADDRINUSE` says taken — for `0.0.0.0` against a
    /// specific address and dual-stack IPv6 against IPv4 alike. TCP keeps `SO_REUSEADDR` (a
    /// listening socket still conflicts, connections in TIME_WAIT do not); UDP drops it, since
    /// with it two UDP sockets may share a port.
    package static func isTaken(_ address: NetworkAddress, options: Options) throws(GnetError) -> Bool {
        let target = try address.resolve()
        guard target.family != AF_UNIX, address.port != 0 else { return false }
        var probeOptions = options
        probeOptions.reusePort = false
        probeOptions.reuseAddr = options.reuseAddr && address.network.isStream
        do throws(SystemError) {
            let fd = try Sys.socket(target.family, address.network.isStream ? gnet_SOCK_STREAM() : gnet_SOCK_DGRAM(), 0)
            defer { Sys.close(fd) }
            try setOptions(fd, target, address, probeOptions)
            var storage = target.storage
            try Sys.bind(fd, &storage, target.length)
            return false
        } catch where error.errno == EADDRINUSE {
            return true
        } catch {
            throw .system(error)
        }
    }
}
