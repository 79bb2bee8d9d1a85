#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import Testing

/// A blocking client socket for tests, with receive/send timeouts so no test can hang.
final class TestSocket {
    let fd: Int32
    let isDatagram: Bool

    /// Connects to `address` (tcp/udp/unix); any read or write gives up after `timeout` seconds.
    init(_ address: NetworkAddress, timeout: Int = 10) throws {
        let target = try address.resolve()
        let type = address.network.isStream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        fd = socket(target.family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        isDatagram = !address.network.isStream
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = target.withUnsafeSockaddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw SystemError("connect", errno: e)
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("send", errno: errno)
            }
            off += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads exactly `count` bytes (or, for UDP, one datagram of at most `count`).
    func receive(exactly count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("recv", errno: errno)
            }
            if n == 0 && !isDatagram { throw TestFailure("EOF after \(got) of \(count) bytes") }
            got += n
            if isDatagram { return Array(out[0..<n]) }
        }
        return out
    }

    /// Reads whatever arrives until the peer closes; returns it.
    func receiveUntilEOF(limit: Int = 64 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress!, 65536, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("recv", errno: errno)
            }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// True once the peer has closed (EOF or reset within the timeout), discarding data before it.
    func sawEOF() -> Bool {
        var b = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &b, 4096, 0)
            if n == 0 { return true }
            if n < 0 && errno == ECONNRESET { return true }
            if n < 0 && errno == EINTR { continue }
            if n > 0 { continue }
            return false
        }
    }

    /// Makes `close` send a reset.
    func setLingerZero() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    /// Shrinks the kernel receive buffer (to make a peer that "stops reading" fill up quickly).
    func setReceiveBuffer(_ n: Int32) {
        var v = n
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}

/// Waits until `condition` holds, polling every 2 ms, for at most `seconds`.
func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = gnet_monotonic_ns() + Int64(seconds * 1e9)
    while gnet_monotonic_ns() < deadline {
        if condition() { return true }
        usleep(2000)
    }
    return condition()
}

/// A unique Unix socket path in the temp directory.
func tempSocketPath(_ tag: String) -> String {
    "/tmp/gnet-test-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// Starts `engine` on its own thread and guarantees it is stopped and joined afterwards.
func withRunningEngine<R>(_ engine: Engine, _ body: (Engine) throws -> R) throws -> R {
    try engine.start()
    defer {
        engine.stop()
        engine.wait()
    }
    return try body(engine)
}

/// A value shared between the loop thread and the test thread.
final class Shared<T>: @unchecked Sendable {
    private var value: T
    private var lock = pthread_mutex_t()
    init(_ v: T) { value = v; pthread_mutex_init(&lock, nil) }
    func with<R>(_ body: (inout T) -> R) -> R {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body(&value)
    }
    var get: T { with { $0 } }
}
