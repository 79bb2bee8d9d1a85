#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// The outcome of a system call that did not fail.
package enum IOResult<Value> {
    /// The call completed with this value (for a read, 0 means end of stream).
    case processed(Value)
    /// A non-blocking descriptor was not ready (EAGAIN/EWOULDBLOCK).
    case wouldBlock
}

extension IOResult: Equatable where Value: Equatable {}

/// The one way Gnet, its services and its daemon call the kernel: runs `body` (a C call that
/// returns a negative value and sets `errno` on failure) again for as long as a signal
/// interrupts it (EINTR), and turns any other failure into a `SystemError` naming `call`.
///
/// `blocking: true` says the call works on a non-blocking descriptor and may find it not
/// ready: EAGAIN/EWOULDBLOCK is then `.wouldBlock`, not an error. With `blocking: false` every
/// failure throws.
@inline(__always)
package func syscall<T: FixedWidthInteger>(blocking: Bool, where call: StaticString, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .processed(result) }
        let e = gnet_errno()
        if e == EINTR { continue }
        if blocking && (e == EAGAIN || e == EWOULDBLOCK) { return .wouldBlock }
        throw SystemError(call, errno: e)
    }
}

/// `syscall(blocking: false, …)` for calls that are never "not ready": the call's value, or
/// the error.
@inline(__always)
package func syscall<T: FixedWidthInteger>(where call: StaticString, _ body: () -> T) throws(SystemError) -> T {
    switch try syscall(blocking: false, where: call, body) {
    case .processed(let value): return value
    case .wouldBlock: throw SystemError(call, errno: EAGAIN)  // not reached: blocking is false
    }
}

/// Writes all of `bytes` to a blocking descriptor, going on after short writes; throws the
/// first failure. On a socket (`socket: true`) it uses `send` with `MSG_NOSIGNAL`, so a peer
/// that has gone is an EPIPE error, never a SIGPIPE.
package func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, socket: Bool = false) throws(SystemError) {
    guard let base = bytes.baseAddress else { return }
    var offset = 0
    while offset < bytes.count {
        let n: Int
        if socket {
            n = try syscall(where: "send") { Glibc.send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        } else {
            n = try syscall(where: "write") { Glibc.write(fd, base + offset, bytes.count - offset) }
        }
        offset += n
    }
}
