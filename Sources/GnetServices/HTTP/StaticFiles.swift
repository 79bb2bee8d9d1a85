#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// Maps request paths to files under a root directory, refusing anything that would resolve
/// outside it (`..` in any spelling, encoded or not, and symbolic links that lead out), and
/// anything that is not a regular file (FIFOs, devices and sockets are never opened: a FIFO's
/// open would block the loop, a device's could do anything).
///
/// The lookup is made by the kernel against a descriptor held for the root: `openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` first opens the path without opening the file
/// (`O_PATH`: no device's open routine runs, no FIFO waits), `fstat` tells what it is, and
/// only a regular file is then opened for reading, non-blocking. Kernels before 5.6 (no
/// openat2) resolve the path with `realpath` and a prefix check instead.
struct StaticFiles {
    /// The root, resolved (no symlinks, no trailing slash).
    let root: String
    /// The root directory, held open (`O_PATH`) for lookups beneath it.
    let rootFD: Int32

    init?(root: String) {
        guard let resolved = realpath(root, nil) else { return nil }
        defer { free(resolved) }
        let fd = Glibc.open(resolved, gnet_O_PATH() | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.root = String(cString: resolved)
        rootFD = fd
    }

    /// Closes the root's descriptor.
    func close() { Glibc.close(rootFD) }

    enum Lookup {
        /// A regular file open for reading, its `fstat`, and its `Content-Type`.
        case file(fd: Int32, info: stat, contentType: String)
        case forbidden
        case notFound
    }

    /// Opens the file for `relative` (the request path after the route prefix, still
    /// percent-encoded, without the query): a regular file opened for reading (non-blocking,
    /// close-on-exec), owned by the caller.
    func open(_ relative: Substring) -> Lookup {
        guard let decoded = percentDecoded(relative) else { return .forbidden }
        if decoded.contains(0) || decoded.contains(0x5C) { return .forbidden }  // NUL, backslash
        var segments: [String] = []
        for part in decoded.split(separator: 0x2F, omittingEmptySubsequences: true) {
            let s = String(decoding: part, as: UTF8.self)
            if s == ".." { return .forbidden }
            if s == "." { continue }
            segments.append(s)
        }
        var dir = rootFD
        var path = segments.isEmpty ? "." : segments.joined(separator: "/")
        var name = segments.last ?? ""
        var found = locate(dir, path)
        var ownsDir = false
        if case .directory(let d) = found {
            dir = d
            ownsDir = true
            path = "index.html"
            name = path
            found = locate(dir, path)
        }
        defer { if ownsDir { Glibc.close(dir) } }
        switch found {
        case .regular(let identity):
            // Opened for reading only now that it is known to be a regular file, and checked to
            // be the same file, in case the path was swapped for something else in between.
            var fd = gnet_open_beneath(dir, path, O_RDONLY | O_NONBLOCK | O_NOCTTY)
            if fd < 0 && errno == ENOSYS { fd = openResolvingByHand(dir, path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY) }
            guard fd >= 0 else { return errno == EACCES ? .forbidden : .notFound }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_dev == identity.st_dev, st.st_ino == identity.st_ino else {
                Glibc.close(fd)
                return .forbidden
            }
            return .file(fd: fd, info: st, contentType: Self.contentType(name))
        case .directory(let d):  // a directory named index.html
            Glibc.close(d)
            return .notFound
        case .special, .outside: return .forbidden
        case .missing: return .notFound
        }
    }

    private enum Found {
        /// A regular file, with its `stat`.
        case regular(stat)
        /// A directory, as an `O_PATH` descriptor.
        case directory(Int32)
        /// A FIFO, device, socket: never opened for reading, never served.
        case special
        /// The path leads out of the root (a symbolic link), or may not be looked at.
        case outside
        case missing
    }

    /// What `path` names beneath `dir`, found without opening it (`O_PATH`).
    private func locate(_ dir: Int32, _ path: String) -> Found {
        var fd = gnet_open_beneath(dir, path, gnet_O_PATH())
        if fd < 0 && errno == ENOSYS { fd = openResolvingByHand(dir, path, flags: gnet_O_PATH()) }
        if fd < 0 {
            switch errno {
            case EXDEV, ELOOP, EACCES, EPERM: return .outside
            default: return .missing
            }
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            Glibc.close(fd)
            return .missing
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory(fd)
        case S_IFREG:
            Glibc.close(fd)
            return .regular(st)
        default:
            Glibc.close(fd)
            return .special
        }
    }

    /// Without openat2 (Linux before 5.6): resolve the path and check that it stays under the
    /// root, then open what it resolved to.
    private func openResolvingByHand(_ dir: Int32, _ path: String, flags: Int32) -> Int32 {
        let base: String
        if dir == rootFD {
            base = root
        } else {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink("/proc/self/fd/\(dir)", &buf, buf.count - 1)
            guard n > 0 else { errno = ENOENT; return -1 }
            base = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        guard let real = realpath(base + "/" + path, nil) else { return -1 }
        let resolved = String(cString: real)
        free(real)
        guard resolved == root || resolved.hasPrefix(root + "/") else {
            errno = EXDEV
            return -1
        }
        return Glibc.open(resolved, flags | O_CLOEXEC)
    }

    private func percentDecoded(_ s: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == 0x25 {
                guard it.count >= 2, let hi = hex(it.popFirst()!), let lo = hex(it.popFirst()!) else { return nil }
                out.append(hi << 4 | lo)
            } else {
                out.append(b)
            }
        }
        return out
    }

    private func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x37
        case 0x61...0x66: return b - 0x57
        default: return nil
        }
    }

    /// The `Content-Type` for a file name, by its extension.
    static func contentType(_ name: String) -> String {
        let ext = name.contains(".") ? (name.split(separator: ".").last.map { $0.lowercased() } ?? "") : ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "txt": return "text/plain; charset=utf-8"
        case "css": return "text/css"
        case "js", "mjs": return "text/javascript"
        case "json": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/vnd.microsoft.icon"
        case "wasm": return "application/wasm"
        case "pdf": return "application/pdf"
        case "xml": return "application/xml"
        default: return "application/octet-stream"
        }
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for a Unix time.
    static func httpDate(_ t: Int) -> String {
        var time = time_t(t)
        var tm = tm()
        gmtime_r(&time, &tm)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The Unix time of an HTTP date (IMF-fixdate); nil when it is not one.
    static func parseHTTPDate(_ s: String) -> Int? {
        let b = Array(s.utf8)  // "Sun, 06 Nov 1994 08:49:37 GMT"
        guard b.count == 29, b[3] == 0x2C, b[4] == 0x20, b[7] == 0x20, b[11] == 0x20, b[16] == 0x20, b[19] == 0x3A, b[22] == 0x3A,
              Array(b[25...]) == Array(" GMT".utf8) else { return nil }
        func number(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r { guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }; v = v * 10 + Int(b[i] - 0x30) }
            return v
        }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let day = number(5..<7), let year = number(12..<16), let hour = number(17..<19), let minute = number(20..<22),
              let second = number(23..<25), let month = months.firstIndex(of: String(decoding: b[8..<11], as: UTF8.self)) else { return nil }
        var tm = tm()
        tm.tm_mday = Int32(day); tm.tm_mon = Int32(month); tm.tm_year = Int32(year - 1900)
        tm.tm_hour = Int32(hour); tm.tm_min = Int32(minute); tm.tm_sec = Int32(second)
        return Int(timegm(&tm))
    }

    /// A single byte range of a file of `size` bytes: (first, last) inclusive; `nil` to ignore
    /// the header (absent, malformed, several ranges); `.unsatisfiable` when none of it exists.
    enum RangeResult: Equatable { case ignore, range(Int, Int), unsatisfiable }

    static func range(_ header: String?, size: Int) -> RangeResult {
        guard let h = header, h.hasPrefix("bytes="), !h.contains(",") else { return .ignore }
        let spec = h.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return .ignore }
        let a = spec[..<dash], b = spec[spec.index(after: dash)...]
        if a.isEmpty {
            guard let n = Int(b), n > 0 else { return .ignore }
            if size == 0 { return .unsatisfiable }
            return .range(max(0, size - n), size - 1)
        }
        guard let first = Int(a), first >= 0 else { return .ignore }
        let last: Int
        if b.isEmpty { last = size - 1 } else {
            guard let l = Int(b), l >= first else { return .ignore }
            last = min(l, size - 1)
        }
        return first < size ? .range(first, last) : .unsatisfiable
    }
}
