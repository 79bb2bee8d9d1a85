#if canImport(Glibc)
import Glibc
#endif

/// The routes as the per-request path reads them: each route's path prefix and its whole
/// prepared keep-alive response (head, the current `Date`, blank line, body) in memory the
/// table owns. Matching a target and copying a response touch no reference counts and call
/// nothing for short targets. One table per service, used on its loop thread only; the owner
/// frees it with `deallocate()`.
struct RouteTable: ~Copyable {
    /// One route: where its prefix and prepared response are, and what the access log needs.
    struct Entry {
        var prefix: UnsafeMutablePointer<UInt8>
        var prefixCount: Int
        /// The route serves files (no prepared response).
        var servesFiles: Bool
        var status: Int
        /// Where responses of this route's status class are counted (`HTTPMetrics`), if anywhere.
        var classCounter: UnsafeMutablePointer<UInt64>? = nil
        var bodyCount: Int
        /// The prepared response; `responseCount` bytes of `responseCapacity`.
        var response: UnsafeMutableRawPointer?
        var responseCount = 0
        var responseCapacity = 0
    }

    /// The entries, longest prefix first (the first that matches answers).
    let entries: UnsafeMutableBufferPointer<Entry>

    /// A table for `prefixes` (already ordered longest first), with each route's status,
    /// body length and whether it serves files.
    init(_ routes: [(prefix: [UInt8], status: Int, bodyCount: Int, servesFiles: Bool)]) {
        entries = .allocate(capacity: routes.count)
        for (i, r) in routes.enumerated() {
            let prefix = UnsafeMutablePointer<UInt8>.allocate(capacity: max(r.prefix.count, 1))
            prefix.initialize(from: r.prefix, count: r.prefix.count)
            entries.baseAddress?.advanced(by: i).initialize(to: Entry(
                prefix: prefix, prefixCount: r.prefix.count, servesFiles: r.servesFiles,
                status: r.status, bodyCount: r.bodyCount, response: nil))
        }
    }

    /// The index of the first route whose prefix starts the path of `target` (the target
    /// without its query), or -1.
    @inline(__always)
    func match(_ target: UnsafePointer<UInt8>, count: Int) -> Int {
        var pathLength = count
        if count <= 32 {
            var i = 0
            while i < count && target[i] != 0x3F { i += 1 }
            pathLength = i
        } else if let query = memchr(target, 0x3F, count) {
            pathLength = UnsafeRawPointer(query) - UnsafeRawPointer(target)
        }
        for i in 0..<entries.count {
            let e = entries[i]
            guard e.prefixCount <= pathLength else { continue }
            var j = 0
            while j < e.prefixCount && e.prefix[j] == target[j] { j += 1 }
            if j == e.prefixCount { return i }
        }
        return -1
    }

    /// Rewrites entry `index`'s prepared response as `parts` joined (head, Date, CRLF, body).
    func prepare(_ index: Int, _ parts: [UInt8]...) {
        let needed = parts.reduce(0) { $0 + $1.count }
        var e = entries[index]
        if needed > e.responseCapacity {
            e.response?.deallocate()
            e.response = .allocate(byteCount: needed, alignment: 16)
            e.responseCapacity = needed
        }
        guard let out = e.response else { return }
        var at = 0
        for part in parts {
            part.withUnsafeBytes { if let p = $0.baseAddress { (out + at).copyMemory(from: p, byteCount: $0.count) } }
            at += part.count
        }
        e.responseCount = needed
        entries[index] = e
    }

    /// Frees the prefixes, responses and entries.
    deinit {
        for e in entries {
            e.prefix.deallocate()
            e.response?.deallocate()
        }
        entries.deallocate()
    }
}
