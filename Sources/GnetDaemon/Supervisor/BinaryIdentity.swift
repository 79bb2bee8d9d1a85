#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// The file the supervisor was started from, as it was at start: its absolute path and the
/// device, inode and modification time found there. A package upgrade puts a new file at the
/// path (a new inode, or at least a new mtime); `/proc/self/exe` keeps naming the old inode,
/// so only this record tells that the binary on disk is no longer the one running.
struct BinaryIdentity: Equatable, CustomStringConvertible {
    /// The absolute path (not resolved through symbolic links: an upgrade may move a link).
    let path: String
    let device: UInt64
    let inode: UInt64
    let modifiedSeconds: Int
    let modifiedNanoseconds: Int

    /// What is at `path` now; nil when there is nothing there (or it cannot be examined).
    init?(path: String) {
        var st = stat()
        guard (try? syscall(where: "stat", { stat(path, &st) })) != nil else { return nil }
        self.path = path
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        modifiedSeconds = st.st_mtim.tv_sec
        modifiedNanoseconds = st.st_mtim.tv_nsec
    }

    /// The file this process was started from: `argv[0]` made absolute (against the working
    /// directory, or found in `PATH` when it has no slash); nil when it cannot be found.
    static func ofThisProcess() -> BinaryIdentity? {
        guard let name = CommandLine.arguments.first, !name.isEmpty else { return nil }
        return absolutePath(of: name).flatMap { BinaryIdentity(path: $0) }
    }

    /// Whether the file at `path` is no longer this one: another file (device, inode) or the
    /// same file rewritten (mtime). A missing file counts as changed: the check that runs it
    /// reports why it cannot.
    var hasChangedOnDisk: Bool { BinaryIdentity(path: path) != self }

    var description: String { "\(path) (inode \(inode), device \(device))" }

    /// `name` as an absolute path, as `execvp` would have found it.
    static func absolutePath(of name: String) -> String? {
        if name.hasPrefix("/") { return name }
        if name.contains("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else { return nil }
            let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return cwd + "/" + (name.hasPrefix("./") ? String(name.dropFirst(2)) : name)
        }
        let search = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in search.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate.hasPrefix("/") ? candidate : absolutePath(of: candidate) }
        }
        return nil
    }
}
