#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// A syslog priority, as systemd's journal reads it from a `<N>` line prefix (sd-daemon.h).
enum SyslogPriority: Int, Sendable {
    case critical = 2, error = 3, warning = 4, notice = 5, info = 6, debug = 7

    /// The word written in the line, e.g. `error`.
    var name: String {
        switch self {
        case .critical: "critical"; case .error: "error"; case .warning: "warning"
        case .notice: "notice"; case .info: "info"; case .debug: "debug"
        }
    }
}

/// The one log line format of a daemon's supervisor and its workers, and the one way it is
/// written: a single `write(2)` to standard error per event, so lines of several processes
/// sharing the stream never interleave, with newlines in the message escaped so one event is one
/// line.
///
/// Under systemd (standard error is the stream `JOURNAL_STREAM` names) a line is
/// `<3>gnetd[worker 0 gen 3 pid 4321]: error: message`: the journal reads the priority from the
/// prefix and stamps the time itself. Otherwise it is
/// `2026-11-30T12:00:00+0000 gnetd[supervisor pid 1234]: error: message`.
enum LogLine {
    /// The program's name (the daemon identity's); set once at start, before any other thread.
    nonisolated(unsafe) static var program = "gnetd"
    /// Which process of the daemon writes: `supervisor`, `worker 0 gen 3`; set once at start.
    nonisolated(unsafe) static var role = "supervisor"
    /// Whether standard error is systemd's journal stream (checked once per process).
    static let toJournal = JournalStream.isStandardError()

    /// The longest line written, newline included: a pipe write up to PIPE_BUF is atomic.
    static let maxBytes = 4096

    /// Writes one event at `priority`.
    static func write(_ priority: SyslogPriority, _ message: String) {
        let line = format(priority, message, journal: toJournal, time: toJournal ? nil : timestamp())
        line.withUnsafeBytes { b in
            guard let base = b.baseAddress else { return }
            _ = try? syscall(where: "write") { Glibc.write(2, base, b.count) }
        }
    }

    /// The bytes of one line: `time` (nil under the journal) or the `<N>` prefix, who writes,
    /// the level, the message with `\n` and `\r` escaped, cut to `maxBytes`.
    static func format(_ priority: SyslogPriority, _ message: String, journal: Bool, time: String?) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(96 + message.utf8.count)
        let head = (journal ? "<\(priority.rawValue)>" : "") + (time.map { $0 + " " } ?? "")
            + "\(program)[\(role) pid \(getpid())]: \(priority.name): "
        line += head.utf8
        let room = maxBytes - 1
        for byte in message.utf8 {
            switch byte {
            case UInt8(ascii: "\n"): line += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): line += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            default: line.append(byte)
            }
            if line.count > room { break }
        }
        if line.count > room {
            let mark = Array(" …".utf8)
            var end = room - mark.count
            while end > 0 && line[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a UTF-8 character
            line.removeSubrange(end...)
            line += mark
        }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Local time, as swift-log's stream handler wrote it: `2026-11-30T12:00:00+0000`.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// systemd's documented test for "standard error is connected to the journal": `JOURNAL_STREAM`
/// is `DEVICE:INODE` of the stream it set up, and `fstat` of descriptor 2 still gives that pair
/// (systemd.exec(5)). A process whose standard error was redirected elsewhere inherits the
/// variable but fails the test.
enum JournalStream {
    /// Whether descriptor 2 is the stream `JOURNAL_STREAM` names.
    static func isStandardError() -> Bool {
        guard let raw = getenv("JOURNAL_STREAM") else { return false }
        return matches(String(cString: raw), fd: 2)
    }

    /// Whether `value` (`DEVICE:INODE`, decimal) names the file open on `fd`.
    static func matches(_ value: String, fd: Int32) -> Bool {
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }
}
