#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// A JSON description handed to another process image in an inherited memfd, its number in an
/// environment variable (a worker's spec; a re-executed supervisor's handoff): an environment
/// string is limited to 128 KiB, which a configuration with large route bodies would exceed.
enum JSONMemfd {
    /// `json` in a new memfd named `name` (close-on-exec; the caller passes it on), readable
    /// from its start.
    static func create(name: String, _ json: JSONValue) throws(GnetError) -> Int32 {
        var data: [UInt8] = []
        json.encode(into: &data)
        let fd = gnet_memfd(name)
        guard fd >= 0 else { throw .system(SystemError("memfd_create", errno: errno)) }
        let written = data.withUnsafeBytes { b in Result { () throws(SystemError) in try writeAll(fd, b) } }
        if case .failure(let e) = written {
            close(fd)
            throw .system(e)
        }
        return fd
    }

    /// The JSON in the file `fd` (from its start), which is closed; nil when it cannot be read,
    /// is larger than 64 MiB or is not JSON.
    static func read(fd: Int32) -> JSONValue? {
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
        return try? JSONParser.parse(bytes)
    }
}
