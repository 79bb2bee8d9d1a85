#if canImport(Glibc)
import Glibc
#endif
import Gnet
import GnetServices

extension Daemon {
    /// The services gnetd runs — `echo`, `framed`, `push`, `http` — registered through the same
    /// `ServiceKind` API as any daemon's own. Add them to a daemon's list to offer them too.
    public static let builtInServices: [ServiceKind] = [
        .kind("echo", settings: EchoSettings.self, datagrams: true) { s, _ in
            EchoService(mode: s.write ?? .sync)
        },
        .kind("framed", settings: FramedSettings.self, datagrams: true) { s, _ in
            FrameAdapter(codec: try s.codec.makeCodec(), handler: FramedEchoService())
        },
        .kind("push", settings: PushSettings.self) { s, _ in
            PushService(message: s.message ?? "heartbeat", interval: .milliseconds(s.interval?.milliseconds ?? 1000))
        },
        .kind("metrics", settings: MetricsSettings.self) { s, context in
            guard let page = context.page, let identity = context.identity else {
                throw SettingsError([], "the metrics service runs only in a daemon's worker")
            }
            return MetricsService(page: page, identity: identity, kinds: context.kinds,
                                  refreshSeconds: max(1, Int((s.refresh?.milliseconds ?? 2000) / 1000)),
                                  headTimeout: .milliseconds(s.headerTimeout?.milliseconds ?? 10_000))
        },
        .kind("http", settings: HTTPSettings.self, counters: HTTPSettings.counters, histograms: ["request_duration"], prepare: { s, _ in
            // The access log is opened before the switch to `user`: its directory may be root's.
            try s.accessLog.map { path throws -> AccessLog in
                guard let log = AccessLog(path: path) else {
                    throw SettingsError(["access_log"], "cannot open \(path): \(String(cString: strerror(errno)))")
                }
                return log
            }
        }, make: { s, log, context in
            var o = HTTPServiceOptions()
            if let t = s.headerTimeout { o.headerTimeout = .milliseconds(t.milliseconds) }
            if let t = s.keepaliveTimeout { o.keepaliveTimeout = .milliseconds(t.milliseconds) }
            if let t = s.sendTimeout { o.sendTimeout = .milliseconds(t.milliseconds) }
            if let t = s.fileCacheValid { o.fileCacheValid = .milliseconds(t.milliseconds) }
            if let b = s.maxBodySize { o.maxBodySize = b.bytes }
            o.accessLog = log
            o.logger = context.logger
            o.metrics.responsesByClass = context.counter(HTTPSettings.counters[0]).slot  // the five classes, in order
            o.metrics.refused = context.counter("requests_refused").slot
            o.metrics.duration = context.histogram("request_duration")
            o.drainIdleGrace = context.drainIdleGrace
            if let log {
                context.onReopenLogs {
                    if let reason = log.reopen() {
                        context.logger.log(.error, "cannot reopen the access log \(log.path): \(reason); still writing to the file open before")
                    }
                }
            }
            let service = HTTPService(routes: s.routes.map {
                HTTPRoute(prefix: $0.path, status: $0.status ?? 200, contentType: $0.contentType ?? "text/plain",
                          body: Array(($0.body ?? "").utf8), root: $0.root)
            }, options: o)
            if let root = service.unavailableRoots.first {
                // Opened after the switch to `user`: what this user cannot reach is refused here,
                // with the reason, instead of being served as errors.
                throw SettingsError(["routes"], "cannot open the file root \(root)")
            }
            return service
        }),
    ]
}

/// `echo`: `write: sync | async`.
public struct EchoSettings: ServiceSettings {
    /// `sync` (default) or `async` writes.
    public var write: EchoService.WriteMode?
}

extension EchoService.WriteMode: Decodable {}

/// `push`: `interval` and `message` (one line; the newline is added).
public struct PushSettings: ServiceSettings {
    /// How often the line goes out (default 1s).
    public var interval: ConfigDuration?
    /// The line (default `heartbeat`).
    public var message: String?

    public func validate() throws(SettingsError) {
        try ConfigRanges.interval.check(interval?.milliseconds, ["interval"])
        if let m = message, m.contains("\n") || m.contains("\r") || m.utf8.count > 4096 {
            throw SettingsError(["message"], "one line of at most 4096 bytes (the newline is added)")
        }
    }
}

/// `metrics`: the daemon's figures for Prometheus at `/metrics` and a status page at `/`.
public struct MetricsSettings: ServiceSettings {
    /// How often the status page reloads itself (default 2s; whole seconds, 1s to 1h).
    public var refresh: ConfigDuration?
    /// A request head must arrive within this of its first byte (408 and a close; default 10s).
    public var headerTimeout: ConfigDuration?

    enum CodingKeys: String, CodingKey {
        case refresh
        case headerTimeout = "header_timeout"
    }

    public func validate() throws(SettingsError) {
        if let r = refresh?.milliseconds, !(1000...3_600_000).contains(r) {
            throw SettingsError(["refresh"], "must be 1s to 1h")
        }
        if let t = headerTimeout?.milliseconds, !(100...3_600_000).contains(t) {
            throw SettingsError(["header_timeout"], "must be 100ms to 1h")
        }
    }
}

/// `framed`: the codec whose frames are echoed.
public struct FramedSettings: ServiceSettings {
    /// The codec that finds the frames and encodes the echo.
    public var codec: CodecConfig

    public func validate() throws(SettingsError) {
        let at = ["codec"]
        try ConfigRanges.delimiter.check(codec.delimiter, at + ["delimiter"])
        try ConfigRanges.frameLength.check(codec.frameLength, at + ["frame_length"])
        try ConfigRanges.lengthFieldOffset.check(codec.lengthFieldOffset, at + ["length_field_offset"])
        try ConfigRanges.lengthFieldLength.check(codec.lengthFieldLength, at + ["length_field_length"])
        try ConfigRanges.lengthAdjustment.check(codec.lengthAdjustment, at + ["length_adjustment"])
        try ConfigRanges.initialBytesToStrip.check(codec.initialBytesToStrip, at + ["initial_bytes_to_strip"])
        try ConfigRanges.maxFrameLength.check(codec.maxFrameLength?.bytes, at + ["max_frame_length"])
        do { _ = try codec.makeCodec() } catch { throw SettingsError(at, "\(error)") }
    }
}

/// A codec for `framed` services.
public struct CodecConfig: Decodable, Equatable, Hashable, Sendable {
    /// `line`, `delimiter`, `fixed-length` or `length-field`.
    public var type: String
    /// `delimiter`: the byte value that ends a frame.
    public var delimiter: Int?
    /// `fixed-length`: bytes per frame.
    public var frameLength: Int?
    /// `length-field`: where the length field starts.
    public var lengthFieldOffset: Int?
    /// `length-field`: its size, 1, 2, 3, 4 or 8 bytes.
    public var lengthFieldLength: Int?
    /// `length-field`: added to the field to give the bytes after it.
    public var lengthAdjustment: Int?
    /// `length-field`: bytes removed from each frame before it is handled.
    public var initialBytesToStrip: Int?
    /// `length-field`: `big` (default) or `little`.
    public var byteOrder: String?
    /// `length-field`: the length counts the field itself.
    public var lengthIncludesLengthField: Bool?
    /// Longer frames close the connection (default 16MiB).
    public var maxFrameLength: ConfigSize?

    enum CodingKeys: String, CodingKey {
        case type, delimiter
        case frameLength = "frame_length"
        case lengthFieldOffset = "length_field_offset"
        case lengthFieldLength = "length_field_length"
        case lengthAdjustment = "length_adjustment"
        case initialBytesToStrip = "initial_bytes_to_strip"
        case byteOrder = "byte_order"
        case lengthIncludesLengthField = "length_includes_length_field"
        case maxFrameLength = "max_frame_length"
    }

    /// The codec these settings describe.
    public func makeCodec() throws(CodecError) -> any Codec {
        let maxLength = maxFrameLength?.bytes ?? defaultMaxFrameLength
        switch type {
        case "line": return LineCodec(maxFrameLength: maxLength)
        case "delimiter":
            guard let d = delimiter, (0...255).contains(d) else { throw .invalidConfiguration("delimiter must be a byte value 0…255") }
            return DelimiterCodec(delimiter: UInt8(d), maxFrameLength: maxLength)
        case "fixed-length":
            return try FixedLengthCodec(frameLength: frameLength ?? 0, maxFrameLength: maxLength)
        case "length-field":
            guard byteOrder == nil || byteOrder == "big" || byteOrder == "little" else { throw .invalidConfiguration("byte_order must be big or little") }
            return try LengthFieldCodec(lengthFieldOffset: lengthFieldOffset ?? 0, lengthFieldLength: lengthFieldLength ?? 4,
                                        lengthAdjustment: lengthAdjustment ?? 0, initialBytesToStrip: initialBytesToStrip,
                                        bigEndian: byteOrder != "little", lengthIncludesLengthField: lengthIncludesLengthField ?? false,
                                        maxFrameLength: maxLength)
        default:
            throw .invalidConfiguration("codec type must be line, delimiter, fixed-length or length-field, not \"\(type)\"")
        }
    }
}

/// `http`: routes, timeouts, the body limit, the access log.
public struct HTTPSettings: ServiceSettings {
    /// The http kind's counters: responses by status class (in this order), then refused requests.
    static let counters = ["responses_1xx", "responses_2xx", "responses_3xx", "responses_4xx", "responses_5xx", "requests_refused"]

    /// The routes, at least one.
    public var routes: [RouteConfig]
    /// A request head must arrive within this.
    public var headerTimeout: ConfigDuration?
    /// Idle kept-alive connections close after this.
    public var keepaliveTimeout: ConfigDuration?
    /// A client that takes no bytes of a waiting response for this long is let go.
    public var sendTimeout: ConfigDuration?
    /// How long a small file is answered from memory before it is looked at again.
    public var fileCacheValid: ConfigDuration?
    /// Larger request bodies get 413.
    public var maxBodySize: ConfigSize?
    /// The access log file (absent: none).
    public var accessLog: String?

    enum CodingKeys: String, CodingKey {
        case routes
        case headerTimeout = "header_timeout"
        case keepaliveTimeout = "keepalive_timeout"
        case sendTimeout = "send_timeout"
        case fileCacheValid = "file_cache_valid"
        case maxBodySize = "max_body_size"
        case accessLog = "access_log"
    }

    public func validate() throws(SettingsError) {
        try ConfigRanges.headerTimeout.check(headerTimeout?.milliseconds, ["header_timeout"])
        try ConfigRanges.keepaliveTimeout.check(keepaliveTimeout?.milliseconds, ["keepalive_timeout"])
        try ConfigRanges.sendTimeout.check(sendTimeout?.milliseconds, ["send_timeout"])
        try ConfigRanges.fileCacheValid.check(fileCacheValid?.milliseconds, ["file_cache_valid"])
        try ConfigRanges.maxBodySize.check(maxBodySize?.bytes, ["max_body_size"])
        guard !routes.isEmpty else { throw SettingsError(["routes"], "an http service needs routes") }
        if let log = accessLog {
            let dir = log.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            var st = stat()
            guard log.hasPrefix("/"), !log.hasSuffix("/"), stat(dir.isEmpty ? "/" : dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw SettingsError(["access_log"], "must be an absolute file path in an existing directory")
            }
            if lstat(log, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
                throw SettingsError(["access_log"], "exists and is not a regular file")
            }
        }
        var paths: Set<String> = []
        for (r, route) in routes.enumerated() {
            let at = ["routes", "\(r)"]
            try ConfigRanges.status.check(route.status, at + ["status"])
            guard route.path.hasPrefix("/") else { throw SettingsError(at + ["path"], "a route path starts with /") }
            guard paths.insert(route.path).inserted else { throw SettingsError(at + ["path"], "route \(route.path) is given twice") }
            if let ct = route.contentType, ct.contains("\r") || ct.contains("\n") { throw SettingsError(at + ["content_type"], "one line") }
            if let root = route.root {
                if route.body != nil || route.status != nil || route.contentType != nil {
                    throw SettingsError(at + ["root"], "a route serves either files (root) or a fixed response (body, status, content_type)")
                }
                var st = stat()
                guard root.hasPrefix("/"), stat(root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw SettingsError(at + ["root"], "must be an existing directory given by an absolute path")
                }
            }
        }
    }
}

/// An http route: `path` is a prefix, the longest match wins; a fixed response (`body`,
/// `status`, `content_type`) or the files under `root`.
public struct RouteConfig: Decodable, Equatable, Hashable, Sendable {
    /// The path prefix the route answers.
    public var path: String
    /// A fixed response's body.
    public var body: String?
    /// A fixed response's status (default 200).
    public var status: Int?
    /// A fixed response's `Content-Type` (default `text/plain`).
    public var contentType: String?
    /// Serve the files under this directory instead.
    public var root: String?

    enum CodingKeys: String, CodingKey {
        case path, body, status, root
        case contentType = "content_type"
    }
}
