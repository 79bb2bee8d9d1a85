#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet

/// Everything a worker process needs, handed over by the supervisor as JSON in an inherited
/// memfd (its number in `GNETD_WORKER`: an environment string is limited to 128 KiB, which a
/// few large route bodies would exceed) together with the inherited descriptors it names.
public struct WorkerSpec: Codable, Sendable {
    /// One inherited listening socket.
    public struct ListenerSpec: Codable, Sendable {
        /// The descriptor number in the worker.
        public var fd: Int32
        /// Index into `services`.
        public var service: Int
        /// The address it was bound to (or adopted for).
        public var address: String
        /// Shared by all workers (Unix sockets, systemd-passed sockets): watched with EPOLLEXCLUSIVE.
        public var shared: Bool
    }

    public var index: Int
    public var generation: Int
    /// The worker's slot in the stats page.
    public var slot: Int
    /// The worker's end of its status channel (a Unix stream socket pair).
    public var statusFD: Int32
    /// The stats page memfd.
    public var statsFD: Int32
    public var drainTimeoutMs: Int64
    /// How often an idle loop wakes to show it is alive (its iteration counter moves); 0 = the
    /// supervisor's watchdog is off.
    public var heartbeatMs: Int64
    public var user: String?
    public var logLevel: String
    public var listeners: [ListenerSpec]
    /// The configuration the supervisor validated, as text (and where it came from, for
    /// messages): the worker decodes its services from it with the same service kinds.
    public var configFile: String
    public var configText: String

    static let environmentKey = "GNETD_WORKER"

    /// The spec as JSON in a new memfd (close-on-exec; the caller passes a copy), read from
    /// its start.
    func memfd() throws(GnetError) -> Int32 {
        let data: Data
        do { data = try JSONEncoder().encode(self) } catch { throw .invalidArgument("the worker description cannot be encoded: \(error)") }
        let fd = gnet_memfd("gnetd-worker-spec")
        guard fd >= 0 else { throw .system(SystemError("memfd_create", errno: errno)) }
        let written = data.withUnsafeBytes { b in Result { () throws(SystemError) in try writeAll(fd, b) } }
        if case .failure(let e) = written {
            close(fd)
            throw .system(e)
        }
        return fd
    }

    /// Reads the spec from the memfd `fd` (from its start) and closes it; nil when it is not one.
    static func read(fd: Int32) -> WorkerSpec? {
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let offset = bytes.count
            guard let n = try? syscall(where: "pread", { pread(fd, &chunk, chunk.count, off_t(offset)) }) else { return nil }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 64 << 20 { return nil }
        }
        return try? JSONDecoder().decode(WorkerSpec.self, from: Data(bytes))
    }
}
