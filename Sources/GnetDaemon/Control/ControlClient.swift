#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// Why a control request did not produce an answer.
public enum ControlClientError: Error, CustomStringConvertible {
    /// Nothing answers at the socket path (gnetctl exit code 3).
    case unreachable(String)
    /// The daemon answered something that is not a JSON object, or closed early (exit code 1).
    case badResponse(String)

    public var description: String {
        switch self {
        case .unreachable(let m), .badResponse(let m): return m
        }
    }
}

/// A blocking client for the control socket, as gnetctl and the tests use it.
public enum ControlClient {
    /// Sends `{"command": command}` and returns the daemon's answer, a JSON object. `timeout`
    /// bounds the whole exchange (a reload answers only once the new generation is ready or has
    /// failed).
    public static func request(socket path: String, command: String, timeout: Double = 60) throws(ControlClientError) -> JSONValue {
        var request: [UInt8] = []
        JSONValue.object(["command": .string(command)]).encode(into: &request)
        let line = try send(socket: path, raw: String(decoding: request, as: UTF8.self) + "\n", timeout: timeout)
        let answer: JSONValue
        do { answer = try JSONParser.parse(line) } catch {
            throw .badResponse("gnetd sent an answer that is not JSON (\(error)): \(line.prefix(200))")
        }
        guard case .object = answer else { throw .badResponse("gnetd sent an answer that is not a JSON object: \(line.prefix(200))") }
        return answer
    }

    /// Sends raw bytes and returns the first line of the answer (without the newline).
    public static func send(socket path: String, raw: String, timeout: Double = 60) throws(ControlClientError) -> String {
        guard let address = SocketAddress.unix(path) else { throw .unreachable("invalid control socket path \(path)") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard address.withUnsafeSockaddr({ connect(fd, $0, $1) }) == 0 else {
            throw .unreachable("cannot reach gnetd at \(path): \(String(cString: strerror(errno))) (is gnetd running? use -s to name another socket)")
        }
        let request = Array(raw.utf8)
        let sent = request.withUnsafeBytes { b in Result { () throws(SystemError) in try writeAll(fd, b, socket: true) } }
        if case .failure(let error) = sent { throw .badResponse("sending to gnetd: \(error)") }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while answer.firstIndex(of: 10) == nil {
            let n: Int
            do {
                n = try syscall(where: "recv") { recv(fd, &chunk, chunk.count, 0) }
            } catch {
                throw .badResponse(error.errno == EAGAIN ? "no answer from gnetd within \(Int(timeout))s" : "reading gnetd's answer: \(error)")
            }
            if n == 0 { throw .badResponse("gnetd closed the connection without answering") }
            answer += chunk[0..<n]
            if answer.count > 16 << 20 { throw .badResponse("answer larger than 16 MiB") }
        }
        return String(decoding: answer[..<answer.firstIndex(of: 10)!], as: UTF8.self)
    }
}
