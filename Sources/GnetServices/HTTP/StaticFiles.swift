#if canImport(Glibc)
import Glibc
#endif

/// Maps request paths to files under a root directory, refusing anything that would resolve
/// outside it (`..` in any spelling, encoded or not, and symbolic links that lead out).
struct StaticFiles {
    /// The root, resolved (no symlinks, no trailing slash).
    let root: String

    init?(root: String) {
        guard let resolved = realpath(root, nil) else { return nil }
        defer { free(resolved) }
        var st = stat()
        guard stat(resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        self.root = String(cString: resolved)
    }

    enum Lookup {
        case file(fd: Int32, size: Int, modified: Int, contentType: String)
        case forbidden
        case notFound
    }

    /// Opens the file for `relative` (the request path after the route prefix, still
    /// percent-encoded, without the query).
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
        var path = root + "/" + segments.joined(separator: "/")
        var st = stat()
        guard stat(path, &st) == 0 else { return .notFound }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            path += "/index.html"
            guard stat(path, &st) == 0 else { return .notFound }
        }
        guard let real = realpath(path, nil) else { return .notFound }
        let resolved = String(cString: real)
        free(real)
        guard resolved.hasPrefix(root + "/") else { return .forbidden }  // a symlink out of the root
        let fd = Glibc.open(resolved, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == EACCES ? .forbidden : .notFound }
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return .notFound
        }
        return .file(fd: fd, size: Int(st.st_size), modified: Int(st.st_mtim.tv_sec), contentType: Self.contentType(resolved))
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

    static func contentType(_ path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
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
