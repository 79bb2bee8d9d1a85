#if canImport(Glibc)
import Glibc
#endif
import Gnet
import GnetDaemon

/// `resp` settings: the largest value (a bulk string) a client may send.
struct RespSettings: ServiceSettings {
    var maxValueSize: ConfigSize?

    enum CodingKeys: String, CodingKey {
        case maxValueSize = "max_value_size"
    }

    static let defaultMaxValue = 16 << 20
    static let ceiling = 512 << 20

    func validate() throws(SettingsError) {
        if let v = maxValueSize?.bytes, !(1...Self.ceiling).contains(v) {
            throw SettingsError(["max_value_size"], "must be 1 to 512MiB, not \(ConfigSize(bytes: v))")
        }
    }
}

/// A Redis-protocol (RESP2) server: commands as arrays of bulk strings or inline, pipelined,
/// answered in order; `PING`, `ECHO`, `GET`, `SET` (`EX`/`PX`/`NX`/`XX`), `DEL`, `EXISTS`,
/// `INCR`/`DECR`/`INCRBY`/`DECRBY`, `MGET`/`MSET`, `EXPIRE`/`PEXPIRE`/`TTL`/`PTTL`/`PERSIST`, `DBSIZE`,
/// `FLUSHDB`, `COMMAND`, `CONFIG GET`, `SELECT 0`, `QUIT`, with Redis's own error texts.
///
/// One keyspace per worker: keys are not shared between workers (as with separate Redis
/// instances), and a reload starts new workers with empty ones. A request may hold values up
/// to `max_value_size`; a client announcing more, or sending a request larger than twice that,
/// gets an error and is closed — nothing is allocated for what it announced.
final class RespService: EventHandler {
    private let maxValue: Int
    private let maxRequest: Int
    private var keys = Keyspace()
    private var replies = Replies()
    /// Where the current request's arguments lie in the input: (offset, length) pairs.
    private var args: UnsafeMutablePointer<Int>
    private var argsCapacity = 64
    private var argCount = 0
    private let commands: ServiceCounter
    private let errors: ServiceCounter
    private let keyCount: ServiceCounter
    private let expired: ServiceCounter
    /// The output may be full: set by each write, so the check costs a load per command.
    private var mayBeFull = false
    /// Monotonic ms, taken once per read.
    private var now: Int64 = 0
    /// The expiry sweep's loop and its one timer closure.
    private weak var loop: EventLoop?
    private var sweeper: (() -> Void)?

    init(settings: RespSettings, context: ServiceContext) {
        maxValue = settings.maxValueSize?.bytes ?? RespSettings.defaultMaxValue
        maxRequest = max(2 * maxValue, 1 << 20)
        args = .allocate(capacity: 2 * argsCapacity)
        commands = context.counter("commands")
        errors = context.counter("errors")
        keyCount = context.counter("keys")
        expired = context.counter("expired")
    }

    deinit {
        args.deallocate()  // the keyspace and the replies free themselves
    }

    func onBoot(_ engine: Engine) -> Action {
        // Redis's active expiry: every 100 ms, look at part of the table for expired keys. The
        // closure is made once and re-armed as it is: a timer re-armed costs no allocation.
        loop = engine.eventLoop
        let sweeper = { [unowned self] in self.sweep() }
        self.sweeper = sweeper
        engine.eventLoop.schedule(after: .milliseconds(100), sweeper)
        return .none
    }

    private func sweep() {
        let removed = keys.sweep(now: monotonicMillis(), budget: 256)
        if removed > 0 {
            expired.add(UInt64(removed))
            keyCount.set(UInt64(keys.count))
        }
        if let loop, let sweeper { loop.schedule(after: .milliseconds(100), sweeper) }
    }

    // MARK: reading

    func onTraffic(_ c: Conn) -> Action {
        guard c.inboundBuffered > 0, let view = try? c.peek(), let base = view.baseAddress else { return .none }
        now = monotonicMillis()
        mayBeFull = false
        var pos = 0
        defer {
            c.discard(pos)
            flush(c)
        }
        while pos < view.count {
            if mayBeFull && c.outboundIsFull { return .none }  // the rest waits for the client to read
            let p = base.assumingMemoryBound(to: UInt8.self)
            let result = base.load(fromByteOffset: pos, as: UInt8.self) == UInt8(ascii: "*")
                ? parseMultibulk(p, pos, view.count) : parseInline(p, pos, view.count)
            switch result {
            case .incomplete:
                if view.count - pos > maxRequest { return protocolError(c, "request too large") }
                return .none
            case .failed(let reason):
                return protocolError(c, reason)
            case .complete(let end):
                pos = end
                if argCount > 0 {
                    commands.add()
                    if !execute(c, p) {  // QUIT: its +OK, and everything before it, go out first
                        c.discard(pos)
                        pos = 0
                        flush(c)
                        c.close()
                        return .none
                    }
                }
            }
        }
        return .none
    }

    /// Answers a request the protocol cannot read, and closes the connection (as Redis does).
    private func protocolError(_ c: Conn, _ reason: String) -> Action {
        errors.add()
        replies.error("ERR Protocol error: \(reason)")
        flush(c)
        c.discard()
        c.close()
        return .none
    }

    private enum Parse { case incomplete, failed(String), complete(end: Int) }

    /// `*N\r\n` then N `$len\r\n<bytes>\r\n`.
    @inline(__always)
    private func parseMultibulk(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Parse {
        var i = start + 1
        guard let (n, next) = number(p, i, end) else { return incompleteOr(p, i, end, "invalid multibulk length") }
        guard n <= 1 << 20 else { return .failed("invalid multibulk length") }
        i = next
        argCount = 0
        if n <= 0 { return .complete(end: i) }
        if n > argsCapacity { growArgs(Int(n)) }
        for a in 0..<Int(n) {
            guard i < end else { return .incomplete }
            guard p[i] == UInt8(ascii: "$") else { return .failed("expected '$', got '\(Character(Unicode.Scalar(p[i])))'") }
            guard let (len, body) = number(p, i + 1, end) else { return incompleteOr(p, i + 1, end, "invalid bulk length") }
            guard len >= 0, len <= maxValue else { return .failed("invalid bulk length") }
            let stop = body + Int(len)
            guard stop + 2 <= end else { return .incomplete }
            guard p[stop] == 13 && p[stop + 1] == 10 else { return .failed("invalid bulk format") }
            args[2 * a] = body
            args[2 * a + 1] = Int(len)
            i = stop + 2
        }
        argCount = Int(n)
        return .complete(end: i)
    }

    /// A decimal number ending in CRLF at `i`; nil if the line is incomplete or malformed.
    @inline(__always)
    private func number(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (Int64, Int)? {
        var i = start
        var negative = false
        if i < end && p[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var v: Int64 = 0
        let first = i
        while i < end, p[i] >= 0x30, p[i] <= 0x39 {
            v = v &* 10 &+ Int64(p[i] - 0x30)
            i += 1
            if i - first > 18 { return nil }
        }
        guard i > first, i + 1 < end, p[i] == 13, p[i + 1] == 10 else { return nil }
        return (negative ? -v : v, i + 2)
    }

    /// Distinguishes a header still arriving from a malformed one.
    private func incompleteOr(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ reason: String) -> Parse {
        var i = start
        if i < end && p[i] == UInt8(ascii: "-") { i += 1 }
        while i < end, p[i] >= 0x30, p[i] <= 0x39, i - start < 20 { i += 1 }
        if i >= end || (p[i] == 13 && i + 1 >= end) { return i - start < 20 ? .incomplete : .failed(reason) }
        return .failed(reason)
    }

    /// An inline command: words separated by spaces, ended by LF (a CR before it dropped).
    private func parseInline(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Parse {
        guard let nl = memchr(p + start, 0x0A, end - start) else {
            return end - start > 64 * 1024 ? .failed("too big inline request") : .incomplete
        }
        let lineEnd = UnsafeRawPointer(nl) - UnsafeRawPointer(p)
        guard lineEnd - start <= 64 * 1024 else { return .failed("too big inline request") }
        var stop = lineEnd
        if stop > start && p[stop - 1] == 13 { stop -= 1 }
        argCount = 0
        var i = start
        while i < stop {
            while i < stop && (p[i] == 0x20 || p[i] == 0x09) { i += 1 }
            guard i < stop else { break }
            let wordStart = i
            while i < stop && p[i] != 0x20 && p[i] != 0x09 { i += 1 }
            if argCount == argsCapacity { growArgs(argCount * 2) }
            args[2 * argCount] = wordStart
            args[2 * argCount + 1] = i - wordStart
            argCount += 1
        }
        return .complete(end: lineEnd + 1)
    }

    private func growArgs(_ n: Int) {
        let fresh = UnsafeMutablePointer<Int>.allocate(capacity: 2 * n)
        fresh.update(from: args, count: 2 * argCount)
        args.deallocate()
        args = fresh
        argsCapacity = n
    }

    // MARK: commands

    @inline(__always)
    private func arg(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UnsafePointer<UInt8>, Int) { (p + args[2 * i], args[2 * i + 1]) }

    /// ASCII case-insensitive comparison of argument `i` with a lowercase word.
    @inline(__always)
    private func argIs(_ p: UnsafePointer<UInt8>, _ i: Int, _ word: StaticString) -> Bool {
        let (a, n) = arg(p, i)
        guard n == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for k in 0..<n where a[k] | 0x20 != w[k] { return false }
        return true
    }

    /// Runs the command in `args`; false for QUIT.
    private func execute(_ c: Conn, _ p: UnsafePointer<UInt8>) -> Bool {
        let (name, n) = arg(p, 0)
        // Dispatch on length and first letter, then the whole word.
        switch (n, n > 0 ? name[0] | 0x20 : 0) {
        case (3, UInt8(ascii: "g")) where argIs(p, 0, "get"):
            guard arity(p, 2, "get") else { break }
            let (k, kn) = arg(p, 1)
            if let e = keys.find(k, kn, now: now) { replies.bulk(e.pointee.value, e.pointee.valueCount) } else { replies.null() }
        case (3, UInt8(ascii: "s")) where argIs(p, 0, "set"):
            set(p)
        case (4, UInt8(ascii: "p")) where argIs(p, 0, "ping"):
            if argCount == 1 { replies.simple("+PONG\r\n") } else if argCount == 2 { bulkArg(p, 1) } else { _ = arity(p, -1, "ping") }
        case (4, UInt8(ascii: "e")) where argIs(p, 0, "echo"):
            if arity(p, 2, "echo") { bulkArg(p, 1) }
        case (3, UInt8(ascii: "d")) where argIs(p, 0, "del"):
            guard atLeast(p, 2, "del") else { break }
            var removed: Int64 = 0
            for i in 1..<argCount {
                let (k, kn) = arg(p, i)
                if let e = keys.find(k, kn, now: now) { keys.remove(e); removed += 1 }
            }
            keyCount.set(UInt64(keys.count))
            replies.integer(removed)
        case (6, UInt8(ascii: "e")) where argIs(p, 0, "exists"):
            guard atLeast(p, 2, "exists") else { break }
            var found: Int64 = 0
            for i in 1..<argCount {
                let (k, kn) = arg(p, i)
                if keys.find(k, kn, now: now) != nil { found += 1 }
            }
            replies.integer(found)
        case (4, UInt8(ascii: "i")) where argIs(p, 0, "incr"):
            if arity(p, 2, "incr") { add(p, 1) }
        case (4, UInt8(ascii: "d")) where argIs(p, 0, "decr"):
            if arity(p, 2, "decr") { add(p, -1) }
        case (6, UInt8(ascii: "i")) where argIs(p, 0, "incrby"), (6, UInt8(ascii: "d")) where argIs(p, 0, "decrby"):
            guard arity(p, 3, argIs(p, 0, "incrby") ? "incrby" : "decrby") else { break }
            guard let by = integer(p, 2) else { replies.error("ERR value is not an integer or out of range"); errors.add(); break }
            if argIs(p, 0, "decrby") {
                guard by != Int64.min else { replies.error("ERR decrement would overflow"); errors.add(); break }
                add(p, -by)
            } else {
                add(p, by)
            }
        case (4, UInt8(ascii: "m")) where argIs(p, 0, "mget"):
            guard atLeast(p, 2, "mget") else { break }
            replies.array(argCount - 1)
            for i in 1..<argCount {
                let (k, kn) = arg(p, i)
                if let e = keys.find(k, kn, now: now) { replies.bulk(e.pointee.value, e.pointee.valueCount) } else { replies.null() }
            }
        case (4, UInt8(ascii: "m")) where argIs(p, 0, "mset"):
            guard argCount >= 3, argCount % 2 == 1 else { wrongArity("mset"); break }
            for i in stride(from: 1, to: argCount, by: 2) {
                let (k, kn) = arg(p, i), (v, vn) = arg(p, i + 1)
                let (e, _) = keys.findOrInsert(k, kn, now: now)
                keys.setValue(e, v, vn)
                keys.setExpiry(e, 0)
            }
            keyCount.set(UInt64(keys.count))
            replies.simple("+OK\r\n")
        case (6, UInt8(ascii: "e")) where argIs(p, 0, "expire"), (7, UInt8(ascii: "p")) where argIs(p, 0, "pexpire"):
            let ms = argIs(p, 0, "pexpire")
            guard arity(p, 3, ms ? "pexpire" : "expire") else { break }
            guard let t = integer(p, 2) else { replies.error("ERR value is not an integer or out of range"); errors.add(); break }
            let (delta, overflow) = ms ? (t, false) : t.multipliedReportingOverflow(by: 1000)
            let (at, overflow2) = now.addingReportingOverflow(delta)
            guard !overflow, !overflow2 else { replies.error("ERR invalid expire time in '\(ms ? "pexpire" : "expire")' command"); errors.add(); break }
            let (k, kn) = arg(p, 1)
            guard let e = keys.find(k, kn, now: now) else { replies.integer(0); break }
            if at <= now {
                keys.remove(e)
                keyCount.set(UInt64(keys.count))
            } else {
                keys.setExpiry(e, at)
            }
            replies.integer(1)
        case (3, UInt8(ascii: "t")) where argIs(p, 0, "ttl"), (4, UInt8(ascii: "p")) where argIs(p, 0, "pttl"):
            let ms = argIs(p, 0, "pttl")
            guard arity(p, 2, ms ? "pttl" : "ttl") else { break }
            let (k, kn) = arg(p, 1)
            guard let e = keys.find(k, kn, now: now) else { replies.integer(-2); break }
            guard e.pointee.expiresAt != 0 else { replies.integer(-1); break }
            let left = e.pointee.expiresAt - now
            replies.integer(ms ? left : (left + 500) / 1000)
        case (7, UInt8(ascii: "p")) where argIs(p, 0, "persist"):
            guard arity(p, 2, "persist") else { break }
            let (k, kn) = arg(p, 1)
            if let e = keys.find(k, kn, now: now), e.pointee.expiresAt != 0 {
                keys.setExpiry(e, 0)
                replies.integer(1)
            } else {
                replies.integer(0)
            }
        case (6, UInt8(ascii: "d")) where argIs(p, 0, "dbsize"):
            if arity(p, 1, "dbsize") { replies.integer(Int64(keys.count)) }
        case (7, UInt8(ascii: "f")) where argIs(p, 0, "flushdb"), (8, UInt8(ascii: "f")) where argIs(p, 0, "flushall"):
            keys.removeAll()
            keyCount.set(0)
            replies.simple("+OK\r\n")
        case (7, UInt8(ascii: "c")) where argIs(p, 0, "command"):
            // redis-cli asks for the command table (COMMAND DOCS) to offer hints: none here.
            replies.array(0)
        case (6, UInt8(ascii: "c")) where argIs(p, 0, "config"):
            // redis-benchmark reads CONFIG GET save/appendonly to warn about persistence.
            if argCount == 3 && argIs(p, 1, "get") { replies.array(0) } else { replies.error("ERR unsupported CONFIG subcommand"); errors.add() }
        case (6, UInt8(ascii: "s")) where argIs(p, 0, "select"):
            guard arity(p, 2, "select") else { break }
            if integer(p, 1) == 0 { replies.simple("+OK\r\n") } else { replies.error("ERR DB index is out of range"); errors.add() }
        case (4, UInt8(ascii: "q")) where argIs(p, 0, "quit"):
            replies.simple("+OK\r\n")
            return false
        default:
            unknown(p)
        }
        if replies.count >= 64 * 1024 { flush(c) }
        return true
    }

    /// SET key value [EX s | PX ms] [NX | XX]
    private func set(_ p: UnsafePointer<UInt8>) {
        guard atLeast(p, 3, "set") else { return }
        var expiresAt: Int64 = 0
        var onlyIfAbsent = false, onlyIfPresent = false
        var i = 3
        while i < argCount {
            if argIs(p, i, "nx") && !onlyIfPresent {
                onlyIfAbsent = true
            } else if argIs(p, i, "xx") && !onlyIfAbsent {
                onlyIfPresent = true
            } else if (argIs(p, i, "ex") || argIs(p, i, "px")) && expiresAt == 0 && i + 1 < argCount {
                guard let t = integer(p, i + 1) else { replies.error("ERR value is not an integer or out of range"); errors.add(); return }
                let (ms, overflow) = argIs(p, i, "ex") ? t.multipliedReportingOverflow(by: 1000) : (t, false)
                let (at, overflow2) = now.addingReportingOverflow(ms)
                guard t > 0, !overflow, !overflow2 else { replies.error("ERR invalid expire time in 'set' command"); errors.add(); return }
                expiresAt = at
                i += 1
            } else {
                replies.error("ERR syntax error")
                errors.add()
                return
            }
            i += 1
        }
        let (k, kn) = arg(p, 1), (v, vn) = arg(p, 2)
        if onlyIfAbsent || onlyIfPresent {
            let present = keys.find(k, kn, now: now) != nil
            if present == onlyIfAbsent {
                replies.null()
                return
            }
        }
        let (e, created) = keys.findOrInsert(k, kn, now: now)
        keys.setValue(e, v, vn)
        keys.setExpiry(e, expiresAt)
        if created { keyCount.set(UInt64(keys.count)) }
        replies.simple("+OK\r\n")
    }

    /// INCR/DECR/INCRBY/DECRBY on argument 1.
    private func add(_ p: UnsafePointer<UInt8>, _ by: Int64) {
        let (k, kn) = arg(p, 1)
        let (e, created) = keys.findOrInsert(k, kn, now: now)
        var value: Int64 = 0
        if !created {
            guard let v = e.pointee.value.flatMap({ Self.parseInteger($0, e.pointee.valueCount) }) else {
                replies.error("ERR value is not an integer or out of range")
                errors.add()
                return
            }
            value = v
        }
        let (sum, overflow) = value.addingReportingOverflow(by)
        guard !overflow else {
            if created { keys.remove(e) }
            replies.error("ERR increment or decrement would overflow")
            errors.add()
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            guard let base = d.baseAddress else { return }
            let n = Replies.decimal(sum, into: base)
            keys.setValue(e, base.assumingMemoryBound(to: UInt8.self), n)
        }
        if created { keyCount.set(UInt64(keys.count)) }
        replies.integer(sum)
    }

    private func integer(_ p: UnsafePointer<UInt8>, _ i: Int) -> Int64? {
        let (a, n) = arg(p, i)
        return Self.parseInteger(a, n)
    }

    /// A decimal integer as Redis reads one: optional '-', digits, no leading zeros, no spaces,
    /// within Int64.
    static func parseInteger(_ a: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n > 0, n <= 20 else { return nil }
        var i = 0
        var negative = false
        if a[0] == UInt8(ascii: "-") { negative = true; i = 1 }
        guard i < n, !(a[i] == 0x30 && n - i > 1) else { return nil }
        var v: Int64 = 0
        while i < n {
            guard a[i] >= 0x30 && a[i] <= 0x39 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(a[i] - 0x30)) : m.addingReportingOverflow(Int64(a[i] - 0x30))
            if o1 || o2 { return nil }
            v = s
            i += 1
        }
        return v
    }

    private func bulkArg(_ p: UnsafePointer<UInt8>, _ i: Int) {
        let (a, n) = arg(p, i)
        replies.bulk(a, n)
    }

    /// The command takes exactly `count` words (the command included); `-1` reports the error.
    @inline(__always)
    private func arity(_ p: UnsafePointer<UInt8>, _ count: Int, _ name: StaticString) -> Bool {
        if argCount == count { return true }
        wrongArity(name)
        return false
    }

    @inline(__always)
    private func atLeast(_ p: UnsafePointer<UInt8>, _ count: Int, _ name: StaticString) -> Bool {
        if argCount >= count { return true }
        wrongArity(name)
        return false
    }

    private func wrongArity(_ name: StaticString) {
        replies.error("ERR wrong number of arguments for '\(name)' command")
        errors.add()
    }

    /// Redis's text: `ERR unknown command 'foo', with args beginning with: 'a' 'b' `.
    private func unknown(_ p: UnsafePointer<UInt8>) {
        func text(_ i: Int, _ limit: Int) -> String {
            let (a, n) = arg(p, i)
            return String(decoding: UnsafeBufferPointer(start: a, count: min(n, limit)), as: UTF8.self)
                .map { $0 == "\r" || $0 == "\n" ? " " : String($0) }.joined()
        }
        var message = "ERR unknown command '\(text(0, 128))', with args beginning with: "
        for i in 1..<max(1, min(argCount, 11)) where i < argCount { message += "'\(text(i, 128))' " }
        replies.error(message)
        errors.add()
    }

    // MARK: writing

    /// Writes the gathered replies, whole: a command is only run while the output has room,
    /// so the write is taken; a client that stopped reading is let go rather than answered out
    /// of order.
    private func flush(_ c: Conn) {
        guard !replies.isEmpty else { return }
        defer { replies.removeAll() }
        mayBeFull = true
        do throws(GnetError) {
            try c.write(replies.bytes)
        } catch .outboundBufferFull {
            c.close()
        } catch {
            // The write failed; the connection is closing with that error.
        }
    }
}

/// Monotonic milliseconds (expiry times never jump with the wall clock).
func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
