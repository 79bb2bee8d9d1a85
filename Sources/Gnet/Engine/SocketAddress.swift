#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// A concrete socket address (IPv4, IPv6 or Unix path), as the kernel sees it.
public struct SocketAddress: Equatable, Sendable, CustomStringConvertible {
    @usableFromInline var storage: sockaddr_storage
    @usableFromInline var length: socklen_t

    init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// Calls `body` with the kernel form of the address and its length.
    public func withUnsafeSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var s = storage
        return try withUnsafePointer(to: &s) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`).
    public var family: Int32 { Int32(storage.ss_family) }

    /// The port of an IP address; 0 for a Unix address.
    public var port: Int {
        var s = storage
        return withUnsafePointer(to: &s) { p in
            switch Int32(p.pointee.ss_family) {
            case AF_INET: return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            case AF_INET6: return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            default: return 0
            }
        }
    }

    /// An IPv4 address from dotted-quad text; nil when the text is not one.
    public static func ipv4(_ host: String, port: Int) -> SocketAddress? {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { return nil }
        var ss = sockaddr_storage()
        withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee = sin } }
        return SocketAddress(storage: ss, length: socklen_t(MemoryLayout<sockaddr_in>.size))
    }

    /// An IPv6 address from its text form (no brackets); nil when the text is not one.
    public static func ipv6(_ host: String, port: Int) -> SocketAddress? {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1 else { return nil }
        var ss = sockaddr_storage()
        withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee = sin6 } }
        return SocketAddress(storage: ss, length: socklen_t(MemoryLayout<sockaddr_in6>.size))
    }

    /// A Unix-domain address; nil when the path is empty or longer than `sun_path` allows.
    public static func unix(_ path: String) -> SocketAddress? {
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: sun.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { return nil }
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var ss = sockaddr_storage()
        withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { $0.pointee = sun } }
        let len = MemoryLayout<sa_family_t>.size + bytes.count + 1
        return SocketAddress(storage: ss, length: socklen_t(len))
    }

    /// The path of a Unix address; nil for IP addresses.
    public var unixPath: String? {
        guard family == AF_UNIX else { return nil }
        var s = storage
        return withUnsafePointer(to: &s) { p in
            p.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { sp in
                withUnsafeBytes(of: sp.pointee.sun_path) { raw in
                    let n = raw.firstIndex(of: 0) ?? raw.count
                    return String(decoding: raw[0..<n], as: UTF8.self)
                }
            }
        }
    }

    /// `1.2.3.4:80`, `[::1]:80` or the Unix path.
    public var description: String {
        var s = storage
        return withUnsafePointer(to: &s) { p -> String in
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            switch Int32(p.pointee.ss_family) {
            case AF_INET:
                return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sp in
                    var a = sp.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
                    return "\(String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)):\(UInt16(bigEndian: sp.pointee.sin_port))"
                }
            case AF_INET6:
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sp in
                    var a = sp.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                    return "[\(String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))]:\(UInt16(bigEndian: sp.pointee.sin6_port))"
                }
            case AF_UNIX:
                return unixPath ?? ""
            default:
                return "<family \(p.pointee.ss_family)>"
            }
        }
    }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        guard a.length == b.length else { return false }
        var x = a.storage, y = b.storage
        return memcmp(&x, &y, Int(a.length)) == 0
    }
}

extension SocketAddress {
    /// The local address a socket is bound to (getsockname); nil on error.
    public static func local(of fd: Int32) -> SocketAddress? { Sys.localAddress(fd) }
}
