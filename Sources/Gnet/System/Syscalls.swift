#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Gnet's system calls, each through `syscall(blocking:where:_:)`: EINTR retried, a failure
/// a `SystemError` naming the call, EAGAIN `.wouldBlock` where the call can legitimately be not
/// ready.
@usableFromInline
enum Sys {
    @inline(__always)
    static func fail(_ call: StaticString) -> SystemError { SystemError(call, errno: gnet_errno()) }

    @inline(__always)
    static func read(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) throws(SystemError) -> IOResult<Int> {
        try syscall(blocking: true, where: "read") { gnet_read(fd, buf, count) }
    }

    @inline(__always)
    static func write(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) throws(SystemError) -> IOResult<Int> {
        try syscall(blocking: true, where: "write") { gnet_write(fd, buf, count) }
    }

    @inline(__always)
    static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, _ count: Int32) throws(SystemError) -> IOResult<Int> {
        try syscall(blocking: true, where: "writev") { gnet_writev(fd, iov, count) }
    }

    /// writev of one or two pieces (a ring buffer's segments), iovecs on the stack.
    @inline(__always)
    static func writev(_ fd: Int32, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
        let count: Int32 = b.count > 0 ? 2 : 1
        return try withUnsafeMutablePointer(to: &iov) { p throws(SystemError) in
            try p.withMemoryRebound(to: iovec.self, capacity: 2) { v throws(SystemError) in try writev(fd, v, count) }
        }
    }

    /// writev of three pieces (prefix, payload, suffix), iovecs on the stack.
    @inline(__always)
    static func writev(_ fd: Int32, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ c: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: c.baseAddress), iov_len: c.count))
        return try withUnsafeMutablePointer(to: &iov) { p throws(SystemError) in
            try p.withMemoryRebound(to: iovec.self, capacity: 3) { v throws(SystemError) in try writev(fd, v, 3) }
        }
    }

    /// sendfile(2) from `file` at `offset`.
    static func sendfile(_ out: Int32, _ file: Int32, offset: Int, count: Int) throws(SystemError) -> IOResult<Int> {
        var off = off_t(offset)
        return try syscall(blocking: true, where: "sendfile") { Glibc.sendfile(out, file, &off, count) }
    }

    static func recvfrom(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int,
                         _ addr: UnsafeMutablePointer<sockaddr_storage>, _ len: inout socklen_t) throws(SystemError) -> IOResult<Int> {
        try addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemError) in
            try syscall(blocking: true, where: "recvfrom") { Glibc.recvfrom(fd, buf, count, 0, a, &len) }
        }
    }

    static func sendto(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int,
                       _ addr: UnsafePointer<sockaddr_storage>?, _ len: socklen_t) throws(SystemError) -> IOResult<Int> {
        guard let addr else {
            return try syscall(blocking: true, where: "send") { Glibc.send(fd, buf, count, gnet_sendmsg_flags()) }
        }
        return try addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemError) in
            try syscall(blocking: true, where: "sendto") { Glibc.sendto(fd, buf, count, gnet_sendmsg_flags(), a, len) }
        }
    }

    /// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; `nil` when no connection is waiting.
    static func accept(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr_storage>, _ len: inout socklen_t) throws(SystemError) -> Int32? {
        try addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemError) in
            try accepted { gnet_accept(fd, a, &len) }
        }
    }

    /// accept4 without the peer address (fetched lazily when asked for); `nil` when none waits.
    @inline(__always)
    static func acceptNoAddress(_ fd: Int32) throws(SystemError) -> Int32? {
        try accepted { gnet_accept(fd, nil, nil) }
    }

    /// An accept4 call's descriptor; nil when none waits. A connection the peer aborted while it
    /// was queued (ECONNABORTED) is skipped.
    @inline(__always)
    private static func accepted(_ call: () -> Int32) throws(SystemError) -> Int32? {
        while true {
            do throws(SystemError) {
                switch try syscall(blocking: true, where: "accept4", call) {
                case .processed(let fd): return fd
                case .wouldBlock: return nil
                }
            } catch where error.errno == ECONNABORTED {
                continue
            }
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
        do throws(SystemError) {
            // A connect interrupted by a signal goes on in the background, like one in progress.
            let r = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) }
            if r == 0 { return true }
            throw fail("connect")
        } catch where error.errno == EINPROGRESS || error.errno == EAGAIN || error.errno == EINTR {
            return false
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

    /// A wait interrupted by a signal (or by SIGSTOP/SIGCONT) is an empty wait, not retried:
    /// the loop then recomputes its timeout from its timers.
    static func epollWait(_ epfd: Int32, _ out: UnsafeMutablePointer<gnet_event_t>, _ max: Int32, _ timeoutMs: Int32) throws(SystemError) -> Int {
        let n = gnet_epoll_wait(epfd, out, max, timeoutMs)
        if n >= 0 { return Int(n) }
        if gnet_errno() == EINTR { return 0 }
        throw fail("epoll_wait")
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
