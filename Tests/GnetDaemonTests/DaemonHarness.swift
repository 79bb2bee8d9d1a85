#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Foundation
import Gnet
import GnetDaemon
import GnetProcess
import Testing

/// A real gnetd process started from the built binary with a test configuration in a temporary
/// directory, and a NOTIFY_SOCKET receiver bound by the test. Stopped (SIGKILL if need be) and
/// cleaned up when released.
final class DaemonHarness {
    static var binDir: String { ProcFS.executableDirectory() }
    let dir: String
    let configPath: String
    let controlPath: String
    let notifyFD: Int32
    private(set) var process: ChildProcess?
    /// Everything received on the notify socket, gathered by a reader thread so the daemon's
    /// sd_notify never blocks on a full socket (systemd reads promptly too).
    private let received = NotificationLog()
    private var reader: Thread?

    init(config body: String, workers: Int = 2) throws {
        var template = Array("/tmp/gnetd-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestError("mkdtemp failed") }
        dir = String(cString: made)
        chmod(dir, 0o755)  // so another uid can reach the control socket
        configPath = dir + "/gnetd.yaml"
        controlPath = dir + "/control.sock"
        notifyFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let notifyPath = dir + "/notify.sock"
        guard let address = SocketAddress.unix(notifyPath), address.withUnsafeSockaddr({ bind(notifyFD, $0, $1) }) == 0 else {
            throw TestError("cannot bind the notify socket")
        }
        try write(config: body, workers: workers)
        let fd = notifyFD, log = received
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread {
            var buf = [UInt8](repeating: 0, count: 4096)
            while !log.closed {
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 { log.append(String(decoding: buf[0..<n], as: UTF8.self)) }
            }
            log.finished()
        }
        thread.start()
        reader = thread
    }

    deinit {
        process = nil  // kills and reaps if still running
        received.close()
        close(notifyFD)
        _ = try? ChildProcess(["rm", "-rf", dir]).wait(timeout: 10)
    }

    /// Writes the configuration file (control socket and drain timeout filled in).
    func write(config body: String, workers: Int = 2, drain: String = "5s", controlIdle: String = "300s") throws {
        let text = "workers: \(workers)\ndrain_timeout: \(drain)\ncontrol:\n  socket: \(controlPath)\n  mode: \"0666\"\n  idle_timeout: \(controlIdle)\n" + body
        let fd = open(configPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestError("cannot write \(configPath)") }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Writes `text` as the whole configuration, with only the control socket (and its mode)
    /// filled in, inside the text's own `control:` block if it has one.
    func write(raw text: String) throws {
        let control = "  socket: \(controlPath)\n  mode: \"0666\"\n"
        let body = text.contains("control:\n") ? text.replacingOccurrences(of: "control:\n", with: "control:\n" + control)
                                                : "control:\n" + control + text
        let fd = open(configPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestError("cannot write \(configPath)") }
        _ = body.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Starts gnetd and waits for READY=1 on the notify socket; returns seconds to ready.
    /// `prefix` runs gnetd under another program (e.g. systemd-socket-activate); with
    /// `waitReady: false` the caller waits for READY=1 itself.
    /// With `captureLog`, gnetd's standard error goes to a file that `log()` reads. `program` is
    /// a binary in the build directory, or an absolute path (a copy of gnetd elsewhere).
    @discardableResult
    func start(prefix: [String] = [], waitReady: Bool = true, environment extra: [String] = [], captureLog: Bool = false,
               program: String = "gnetd") throws -> Double {
        var env = ChildProcess.inheritedEnvironment().filter { !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("LISTEN_") && !$0.hasPrefix("WATCHDOG_") }
        env.append("NOTIFY_SOCKET=\(dir)/notify.sock")
        env += extra
        let begin = gnet_monotonic_ns()
        let executable = program.hasPrefix("/") ? program : Self.binDir + "/" + program
        process = try ChildProcess(prefix + [executable, "--config", configPath], environment: env,
                                   stderrPath: captureLog ? dir + "/stderr.log" : nil)
        if !waitReady { return 0 }
        guard waitFor(notification: "READY=1", timeout: 30) != nil else { throw TestError("gnetd sent no READY=1") }
        return Double(gnet_monotonic_ns() - begin) / 1e9
    }

    var pid: pid_t { process?.pid ?? 0 }

    /// What gnetd has written to standard error so far (after `start(captureLog: true)`).
    func log() -> String { ProcFS.readFile(dir + "/stderr.log") ?? "" }

    /// The pids of the workers in state `state` (any state for nil).
    func workerPids(state: String? = "serving") throws -> [Int] {
        try workers().filter { state == nil || $0["state"] as? String == state }.compactMap { $0["pid"] as? Int }
    }

    /// The first notification not yet taken that contains `text`, waiting up to `timeout` seconds.
    func waitFor(notification text: String, timeout: Double = 30) -> String? {
        let deadline = gnet_monotonic_ns() + Int64(timeout * 1e9)
        repeat {
            if let m = received.take(containing: text) { return m }
            usleep(5000)
        } while gnet_monotonic_ns() < deadline
        return nil
    }

    /// The daemon's answer to `command`, parsed with Foundation here (the daemon has its own
    /// JSON without it), so tests index it as `[String: Any]`.
    func request(_ command: String, timeout: Double = 60) throws -> [String: Any] {
        let line = try ControlClient.send(socket: controlPath, raw: "{\"command\": \"\(command)\"}\n", timeout: timeout)
        guard let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestError("not a JSON object: \(line.prefix(200))")
        }
        return answer
    }

    /// The bound addresses of service `name`, from `status`.
    func addresses(_ name: String) throws -> [NetworkAddress] {
        let status = try request("status")
        let services = status["services"] as? [[String: Any]] ?? []
        guard let s = services.first(where: { $0["name"] as? String == name }) else { throw TestError("no service \(name)") }
        return try (s["listen"] as? [String] ?? []).map { try NetworkAddress(parsing: $0) }
    }

    /// Worker entries from `stats`.
    func workers() throws -> [[String: Any]] { try request("stats")["workers"] as? [[String: Any]] ?? [] }

    /// Runs gnetctl with `args` (and `environment` added to ours, GNETCTL_SOCKET removed);
    /// returns (exit code, stdout).
    func gnetctl(_ args: [String], asUser user: String? = nil, environment extra: [String] = []) throws -> (Int32, String) {
        var argv = [Self.binDir + "/gnetctl"] + args
        if let user { argv = ["setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups"] + argv }
        let env = ChildProcess.inheritedEnvironment().filter { !$0.hasPrefix("GNETCTL_SOCKET=") } + extra
        let p = try ChildProcess(argv, environment: env, discardStderr: true)
        let out = p.readAll(timeout: 120)
        return (p.wait(timeout: 120) ?? -1, out)
    }

    /// Stops gnetd with `signal` and returns its exit code.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 30) -> Int32? {
        guard let p = process else { return nil }
        p.signal(signal)
        return p.wait(timeout: timeout)
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A blocking echo client with timeouts.
final class EchoClient {
    private(set) var fd: Int32
    init(_ address: NetworkAddress, timeout: Int = 10) throws {
        let target = try address.resolve()
        fd = socket(target.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard target.withUnsafeSockaddr({ connect(fd, $0, $1) }) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw SystemError("connect", errno: e)
        }
    }
    deinit { close() }

    /// Closes the connection (once).
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends `text` and reads the same number of bytes back; throws on any mismatch or error.
    func echo(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw SystemError("send", errno: errno) }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while got.count < bytes.count {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { throw n == 0 ? TestError("EOF") : SystemError("recv", errno: errno) }
            got += buf[0..<n]
        }
        guard got == bytes else { throw TestError("echo mismatch") }
    }
}

/// Notifications received so far; thread-safe.
final class NotificationLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    private var isClosed = false
    private var done = false

    var closed: Bool { lock.lock(); defer { lock.unlock() }; return isClosed }

    func append(_ m: String) { lock.lock(); messages.append(m); lock.unlock() }

    func take(containing text: String) -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let i = messages.firstIndex(where: { $0.contains(text) }) else { return nil }
        return messages.remove(at: i)
    }

    func finished() { lock.lock(); done = true; lock.unlock() }

    /// Stops the reader thread and waits (bounded) for it.
    func close() {
        lock.lock(); isClosed = true; lock.unlock()
        for _ in 0..<100 {
            lock.lock(); let d = done; lock.unlock()
            if d { return }
            usleep(5000)
        }
    }
}
