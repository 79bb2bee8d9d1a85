#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// The outcome of a non-blocking I/O call that did not fail.
@usableFromInline
enum IOResult: Equatable {
    /// The call moved this many bytes (0 on a read means end of stream).
    case processed(Int)
    /// The socket is not ready (EAGAIN/EWOULDBLOCK).
    case wouldBlock
}

/// The one place where Gnet calls the kernel. Every wrapper retries on EINTR and turns a
/// failure into a `SystemError` naming the call; EAGAIN becomes `.wouldBlock` where the call can
/// legitimately be not ready.
@usableFromInline
enum Sys {
    @inline(__always)
    static func fail(_ call: StaticString) -> SystemError { SystemError(call, errno: gnet_errno()) }

    @inline(__always)
    static func read(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) throws(SystemError) -> IOResult {
        while true {
            let n = gnet_read(fd, buf, count)
            if n >= 0 { return .processed(n) }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("read", errno: e)
        }
    }

    @inline(__always)
    static func write(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) throws(SystemError) -> IOResult {
        while true {
            let n = gnet_write(fd, buf, count)
            if n >= 0 { return .processed(n) }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("write", errno: e)
        }
    }

    @inline(__always)
    static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, _ count: Int32) throws(SystemError) -> IOResult {
        while true {
            let n = gnet_writev(fd, iov, count)
            if n >= 0 { return .processed(n) }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("writev", errno: e)
        }
    }

    /// writev of one or two pieces (a ring buffer's segments), iovecs on the stack.
    @inline(__always)
    static func writev(_ fd: Int32, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
        let count: Int32 = b.count > 0 ? 2 : 1
        return try withUnsafeMutablePointer(to: &iov) { p throws(SystemError) in
            try p.withMemoryRebound(to: iovec.self, capacity: 2) { v throws(SystemError) in try writev(fd, v, count) }
        }
    }

    /// writev of three pieces (prefix, payload, suffix), iovecs on the stack.
    @inline(__always)
    static func writev(_ fd: Int32, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: c.baseAddress), iov_len: c.count))
        return try withUnsafeMutablePointer(to: &iov) { p throws(SystemError) in
            try p.withMemoryRebound(to: iovec.self, capacity: 3) { v throws(SystemError) in try writev(fd, v, 3) }
        }
    }

    /// sendfile(2) from `file` at `offset`.
    static func sendfile(_ out: Int32, _ file: Int32, offset: Int, count: Int) throws(SystemError) -> IOResult {
        var off = off_t(offset)
        while true {
            let n = Glibc.sendfile(out, file, &off, count)
            if n >= 0 { return .processed(n) }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("sendfile", errno: e)
        }
    }

    static func recvfrom(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int,
                         _ addr: UnsafeMutablePointer<sockaddr_storage>, _ len: inout socklen_t) throws(SystemError) -> IOResult {
        while true {
            let n = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.recvfrom(fd, buf, count, 0, $0, &len) }
            if n >= 0 { return .processed(n) }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("recvfrom", errno: e)
        }
    }

    static func sendto(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int,
                       _ addr: UnsafePointer<sockaddr_storage>?, _ len: socklen_t) throws(SystemError) -> IOResult {
        while true {
            let n: Int
            if let addr {
                n = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.sendto(fd, buf, count, gnet_sendmsg_flags(), $0, len)
                }
            } else {
                n = Glibc.send(fd, buf, count, gnet_sendmsg_flags())
            }
            if n >= 0 { return .processed(n) }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("sendto", errno: e)
        }
    }

    /// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; `nil` when no connection is waiting.
    static func accept(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr_storage>, _ len: inout socklen_t) throws(SystemError) -> Int32? {
        while true {
            let c = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { gnet_accept(fd, $0, &len) }
            if c >= 0 { return c }
            let e = gnet_errno()
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("accept4", errno: e)
        }
    }

    /// accept4 without the peer address (fetched lazily when asked for); `nil` when none waits.
    @inline(__always)
    static func acceptNoAddress(_ fd: Int32) throws(SystemError) -> Int32? {
        while true {
            let c = gnet_accept(fd, nil, nil)
            if c >= 0 { return c }
            let e = gnet_errno()
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("accept4", errno: e)
        }
    }

    static func close(_ fd: Int32) {
        // Linux releases the descriptor even when close reports EINTR: never retry.
        _ = Glibc.close(fd)
    }

    static func socket(_ domain: Int32, _ type: Int32, _ proto: Int32) throws(SystemError) -> Int32 {
        let fd = gnet_socket(domain, type, proto)
        if fd < 0 { throw fail("socket") }
        return fd
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: StaticString = "setsockopt") throws(SystemError) {
        if gnet_set_int_option(fd, level, name, value) < 0 { throw fail(call) }
    }

    static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32) throws(SystemError) -> Int32 {
        var v: Int32 = 0
        if gnet_get_int_option(fd, level, name, &v) < 0 { throw fail("getsockopt") }
        return v
    }

    static func bind(_ fd: Int32, _ addr: UnsafePointer<sockaddr_storage>, _ len: socklen_t) throws(SystemError) {
        let r = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, len) }
        if r < 0 { throw fail("bind") }
    }

    static func listen(_ fd: Int32, _ backlog: Int32) throws(SystemError) {
        if Glibc.listen(fd, backlog) < 0 { throw fail("listen") }
    }

    /// Non-blocking connect: returns true when connected at once, false when in progress.
    static func connect(_ fd: Int32, _ addr: UnsafePointer<sockaddr_storage>, _ len: socklen_t) throws(SystemError) -> Bool {
        while true {
            let r = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) }
            if r == 0 { return true }
            let e = gnet_errno()
            if e == EINTR { continue }
            if e == EINPROGRESS || e == EAGAIN { return false }
            throw SystemError("connect", errno: e)
        }
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return r == 0 ? SocketAddress(storage: ss, length: len) : nil
    }

    static func peerAddress(_ fd: Int32) -> SocketAddress? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        return r == 0 ? SocketAddress(storage: ss, length: len) : nil
    }

    static func epollCreate() throws(SystemError) -> Int32 {
        let fd = gnet_epoll_create()
        if fd < 0 { throw fail("epoll_create1") }
        return fd
    }

    static func epollCtl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ events: UInt32, _ token: UInt64) throws(SystemError) {
        if gnet_epoll_ctl(epfd, op, fd, events, token) < 0 { throw fail("epoll_ctl") }
    }

    static func epollWait(_ epfd: Int32, _ out: UnsafeMutablePointer<gnet_event_t>, _ max: Int32, _ timeoutMs: Int32) throws(SystemError) -> Int {
        while true {
            let n = gnet_epoll_wait(epfd, out, max, timeoutMs)
            if n >= 0 { return Int(n) }
            let e = gnet_errno()
            if e == EINTR { return 0 }
            throw SystemError("epoll_wait", errno: e)
        }
    }

    static func eventfd() throws(SystemError) -> Int32 {
        let fd = gnet_eventfd()
        if fd < 0 { throw fail("eventfd") }
        return fd
    }

    static func dup(_ fd: Int32) throws(SystemError) -> Int32 {
        let r = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if r < 0 { throw fail("fcntl(F_DUPFD_CLOEXEC)") }
        return r
    }

    static func setNonBlocking(_ fd: Int32) throws(SystemError) {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 { throw fail("fcntl(F_GETFL)") }
        if fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 { throw fail("fcntl(F_SETFL)") }
    }
}
