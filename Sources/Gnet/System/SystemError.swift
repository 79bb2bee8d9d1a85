#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, and the `errno` it left.
///
/// Every syscall wrapper in Gnet throws this type (typed throws, so a failure costs no heap
/// allocation). `description` reads like `"accept4: Too many open files (errno 24)"`.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The system call that failed, e.g. `"epoll_ctl"`.
    public let call: StaticString
    /// The `errno` value it left.
    public let errno: Int32

    /// Creates an error for `call` with the given errno value.
    public init(_ call: StaticString, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public static func == (a: SystemError, b: SystemError) -> Bool {
        a.errno == b.errno && a.call.description == b.call.description
    }

    /// The C library's message for `errno`.
    public var message: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(message) (errno \(errno))" }
}
