#if canImport(Glibc)
import Glibc
#endif
import Gnet
import GnetProcess

/// Which processes hold a socket on an address, from /proc, for the message that refuses to
/// start on an address another process serves. Best effort: the socket's inode is found in
/// /proc/net/{tcp,tcp6,udp,udp6} (listening TCP sockets on the port) or /proc/net/unix (a
/// listening socket at the path), and mapped to processes by their /proc/PID/fd links
/// `socket:[INODE]`; processes whose descriptors this one may not read are not found.
enum SocketHolders {
    /// The processes holding a socket bound to `address` (for TCP, listening on it).
    static func pids(holding address: NetworkAddress) -> [pid_t] {
        if address.network == .unix { return pids(owning: unixInodes(path: address.path)) }
        let tables = address.network.isStream ? ["tcp", "tcp6"] : ["udp", "udp6"]
        var inodes: Set<UInt64> = []
        for table in tables {
            for fields in rows("/proc/net/" + table) where fields.count > 9 {
                // local_address is HEXADDR:HEXPORT; TCP state 0A is LISTEN.
                guard let port = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) }), port == address.port,
                      !address.network.isStream || fields[3] == "0A", let inode = UInt64(fields[9]), inode != 0 else { continue }
                inodes.insert(inode)
            }
        }
        return pids(owning: inodes)
    }

    /// `pid 1234 (gnetd)` for each, or nil when none was found.
    static func describe(_ pids: [pid_t]) -> String? {
        guard !pids.isEmpty else { return nil }
        return pids.map { pid in
            let name = ProcFS.readFile("/proc/\(pid)/comm").map { $0.split(separator: "\n").first.map(String.init) ?? $0 }
            return "pid \(pid)" + (name.map { " (\($0))" } ?? "")
        }.joined(separator: ", ")
    }

    /// Whether `pid` is this process or one of its children (a worker holding inherited sockets).
    static func isThisDaemon(_ pid: pid_t) -> Bool {
        if pid == getpid() { return true }
        // /proc/PID/stat: "PID (comm) STATE PPID …"; comm may hold spaces and parentheses.
        guard let stat = ProcFS.readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        return rest.count > 1 && pid_t(rest[1]) == getpid()
    }

    private static func unixInodes(path: String) -> Set<UInt64> {
        // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 is a listening socket.
        var inodes: Set<UInt64> = []
        for fields in rows("/proc/net/unix") where fields.count > 7 && fields[3] == "00010000" {
            if fields[7...].joined(separator: " ") == path, let inode = UInt64(fields[6]) { inodes.insert(inode) }
        }
        return inodes
    }

    /// The rows of a /proc/net table, split into fields, header dropped.
    private static func rows(_ path: String) -> [[String]] {
        guard let text = ProcFS.readFile(path) else { return [] }
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
    }

    /// The processes with a descriptor on one of `inodes`, by their /proc/PID/fd links.
    private static func pids(owning inodes: Set<UInt64>) -> [pid_t] {
        guard !inodes.isEmpty else { return [] }
        let links = Set(inodes.map { "socket:[\($0)]" })
        var found: [pid_t] = []
        for entry in directory("/proc") {
            guard let pid = pid_t(entry) else { continue }
            let fdDir = "/proc/\(entry)/fd"
            if directory(fdDir).contains(where: { links.contains(linkTarget(fdDir + "/" + $0)) }) { found.append(pid) }
        }
        return found.sorted()
    }

    private static func directory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func linkTarget(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return "" }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address another process serves: a daemon refuses to start (or to reload) onto it rather
/// than share its traffic or take its socket file.
struct AddressInUse: Error, CustomStringConvertible {
    /// The address as configured, e.g. `tcp://127.0.0.1:9000`, or the control socket's path.
    let address: String
    /// Who holds it, e.g. `pid 1234 (gnetd)`, when /proc tells.
    let holders: String?

    var description: String {
        "\(address) is in use by another process" + (holders.map { ": \($0)" } ?? "")
    }
}
