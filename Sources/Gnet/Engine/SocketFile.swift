#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// A Unix socket file as this process bound it: the path, and the device and inode `bind`
/// created there. Removing it unlinks the path only while it is still that file: another
/// process may have bound the path since (after this one's socket was found stale, or after an
/// operator moved it), and that file is not ours to delete.
package struct SocketFile: Sendable, Equatable {
    /// Where the socket file is.
    package let path: String
    let device: UInt64
    let inode: UInt64

    /// The file at `path` now (call it right after `bind`); nil if there is none.
    package init?(boundAt path: String) {
        guard let id = Self.identity(path) else { return nil }
        self.path = path
        (device, inode) = id
    }

    /// Whether `path` is still this file.
    package var isInPlace: Bool {
        guard let id = Self.identity(path) else { return false }
        return id == (device, inode)
    }

    /// Unlinks `path` if it is still this file.
    package func remove() {
        if isInPlace { _ = unlink(path) }
    }

    private static func identity(_ path: String) -> (UInt64, UInt64)? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Whether a process accepts connections on the Unix socket at `path`: a connection
    /// accepted, or queued behind a full backlog (EAGAIN), says yes; ECONNREFUSED (a file left
    /// by a process that is gone) or no file at all says no.
    package static func isServed(_ path: String) -> Bool {
        guard let target = SocketAddress.unix(path), let probe = try? Sys.socket(AF_UNIX, gnet_SOCK_STREAM(), 0) else { return false }
        defer { Sys.close(probe) }
        var storage = target.storage
        do throws(SystemError) {
            _ = try Sys.connect(probe, &storage, target.length)
            return true
        } catch {
            return error.errno != ECONNREFUSED && error.errno != ENOENT
        }
    }
}
