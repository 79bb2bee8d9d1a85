#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// An address as users write it: `tcp://host:port`, `tcp4://`, `tcp6://`, `udp://`, `udp4://`,
/// `udp6://` or `unix://path`.
///
/// Parsing never touches the network; `resolve()` turns it into a `SocketAddress` (numeric hosts
/// and `localhost` without a lookup, other names with `getaddrinfo`, which may block).
/// An empty host (`tcp://:9000`) means every local address of the family.
public struct NetworkAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The transport and address family.
    public enum Network: String, Sendable, CaseIterable {
        case tcp, tcp4, tcp6, udp, udp4, udp6, unix

        /// True for connection-oriented networks (TCP and Unix streams).
        public var isStream: Bool { self != .udp && self != .udp4 && self != .udp6 }
        /// True for UDP.
        public var isDatagram: Bool { !isStream }
    }

    /// The network named by the scheme.
    public let network: Network
    /// The host part (without brackets); empty for "any" and for Unix addresses.
    public let host: String
    /// The port; 0 asks the kernel for a free one. Unused for Unix addresses.
    public let port: Int
    /// The socket path of a Unix address; empty otherwise.
    public let path: String

    /// Parses `text`. Throws `.unsupportedProtocol` for an unknown scheme and `.invalidAddress` for
    /// anything malformed: no scheme, nothing after it, a trailing path, a bad port.
    public init(parsing text: String) throws(GnetError) {
        let utf8 = Array(text.utf8)
        var sepAt = -1
        if utf8.count >= 3 {
            for i in 0...(utf8.count - 3) where utf8[i] == 0x3A && utf8[i + 1] == 0x2F && utf8[i + 2] == 0x2F {
                sepAt = i
                break
            }
        }
        guard sepAt > 0 else { throw .invalidAddress(text) }
        let scheme = String(decoding: utf8[0..<sepAt], as: UTF8.self).lowercased()
        let rest = String(decoding: utf8[(sepAt + 3)...], as: UTF8.self)
        guard let network = Network(rawValue: scheme) else { throw .unsupportedProtocol(text) }
        self.network = network
        if network == .unix {
            guard !rest.isEmpty, !rest.utf8.contains(0), SocketAddress.unix(rest) != nil else { throw .invalidAddress(text) }
            host = ""; port = 0; path = rest
            return
        }
        path = ""
        guard !rest.isEmpty, !rest.contains("/"), let colon = rest.lastIndex(of: ":") else { throw .invalidAddress(text) }
        var h = String(rest[rest.startIndex..<colon])
        let p = rest[rest.index(after: colon)...]
        guard !p.isEmpty, p.allSatisfy({ $0.isASCII && $0.isNumber }), let portNumber = Int(p), portNumber <= 65535 else {
            throw .invalidAddress(text)
        }
        if h.hasPrefix("[") {
            guard h.hasSuffix("]"), h.count >= 2 else { throw .invalidAddress(text) }
            h = String(h.dropFirst().dropLast())
        } else if h.contains(":") || h.contains("]") {
            throw .invalidAddress(text)
        }
        let forbidden: Set<Character> = [" ", "[", "]", "\0", "\t", "\n", "\r", "@", "?", "#"]
        if h.contains(where: { forbidden.contains($0) }) { throw .invalidAddress(text) }
        host = h
        port = portNumber
    }

    /// Creates an IP address directly.
    public init(_ network: Network, host: String, port: Int) {
        self.network = network; self.host = host; self.port = port; self.path = ""
    }

    /// Creates a Unix address directly.
    public init(unixPath: String) {
        network = .unix; host = ""; port = 0; path = unixPath
    }

    /// The canonical text form, parseable again.
    public var description: String {
        if network == .unix { return "unix://\(path)" }
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(network.rawValue)://\(h):\(port)"
    }

    private var allowsV4: Bool { network != .tcp6 && network != .udp6 }
    private var allowsV6: Bool { network != .tcp4 && network != .udp4 }

    /// The kernel address for this text, resolving names with `getaddrinfo` when they are not
    /// numeric (that may block: resolve before entering a loop, or on the blocking pool).
    public func resolve() throws(GnetError) -> SocketAddress {
        if network == .unix {
            guard let a = SocketAddress.unix(path) else { throw .invalidAddress(description) }
            return a
        }
        if host.isEmpty {
            if network == .tcp6 || network == .udp6 { return SocketAddress.ipv6("::", port: port)! }
            return SocketAddress.ipv4("0.0.0.0", port: port)!
        }
        if host == "localhost" {
            if allowsV4, let a = SocketAddress.ipv4("127.0.0.1", port: port) { return a }
            if let a = SocketAddress.ipv6("::1", port: port) { return a }
        }
        if allowsV4, let a = SocketAddress.ipv4(host, port: port) { return a }
        if allowsV6, let a = SocketAddress.ipv6(host, port: port) { return a }
        if SocketAddress.ipv4(host, port: port) != nil || SocketAddress.ipv6(host, port: port) != nil {
            throw .invalidAddress(description)  // numeric, but of the family this network excludes
        }
        return try lookUp()
    }

    private func lookUp() throws(GnetError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_family = allowsV4 && allowsV6 ? AF_UNSPEC : (allowsV4 ? AF_INET : AF_INET6)
        hints.ai_socktype = network.isStream ? gnet_SOCK_STREAM() : gnet_SOCK_DGRAM()
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else { throw .invalidAddress(description) }
        defer { freeaddrinfo(result) }
        var ss = sockaddr_storage()
        let len = first.pointee.ai_addrlen
        withUnsafeMutableBytes(of: &ss) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(len)))
        }
        return SocketAddress(storage: ss, length: len)
    }
}
