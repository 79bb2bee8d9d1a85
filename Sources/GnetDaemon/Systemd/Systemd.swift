#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import CSystemd
import Gnet

/// The daemon's dealings with systemd through libsystemd: readiness and status notifications,
/// the watchdog, and sockets passed by socket activation. Only the supervisor calls these.
/// Outside systemd (no NOTIFY_SOCKET, no LISTEN_FDS) every call is a cheap no-op.
enum Systemd {
    /// Sends `state` (newline-separated `KEY=value` lines) to the service manager.
    static func notify(_ state: String) {
        _ = state.withCString { sd_notify(0, $0) }
    }

    /// Half the watchdog interval when systemd expects `WATCHDOG=1` pings, else nil.
    static func watchdogPingInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec / 2))
    }

    /// Sockets passed with LISTEN_FDS/LISTEN_FDNAMES, grouped by name, with the address each is
    /// bound to. The variables are unset so workers do not see them.
    static func passedSockets() -> [String: [(fd: Int32, address: NetworkAddress)]] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let n = sd_listen_fds_with_names(1, &names)
        guard n > 0 else { return [:] }
        defer {
            if let names {
                for i in 0..<Int(n) { free(names[i]) }
                free(names)
            }
        }
        var out: [String: [(fd: Int32, address: NetworkAddress)]] = [:]
        for i in 0..<Int(n) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            guard let address = describe(fd) else { continue }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            out[name, default: []].append((fd, address))
        }
        return out
    }

    /// The NetworkAddress a passed socket is bound to.
    private static func describe(_ fd: Int32) -> NetworkAddress? {
        guard let local = SocketAddress.local(of: fd) else { return nil }
        var type: Int32 = 0
        var len = socklen_t(4)
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)
        let stream = type == gnet_SOCK_STREAM()
        switch local.family {
        case AF_UNIX: return NetworkAddress(unixPath: local.unixPath ?? "")
        case AF_INET6:
            var host = local.description
            host = String(host[host.index(after: host.startIndex)..<host.lastIndex(of: "]")!])
            return NetworkAddress(stream ? .tcp6 : .udp6, host: host, port: local.port)
        default:
            let text = local.description
            return NetworkAddress(stream ? .tcp4 : .udp4, host: String(text[..<text.lastIndex(of: ":")!]), port: local.port)
        }
    }
}
