#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import GnetDaemon
import GnetProcess

/// `gnet-bench compare`: the C reference and the Gnet echo server, side by side in one run,
/// each pinned to the same CPU with the load generator pinned to another; reports throughput,
/// latency, server CPU time per message and the ratios to C.
struct Comparison {
    struct Server {
        let name: String
        let argv: [String]
        /// gnetd: the port and the worker pids come from its control socket.
        var daemonControl: String? = nil
        /// Pinned to `serverCPU`; a server of several loops runs on every CPU instead.
        var pinned = true
    }

    struct Row {
        let server: String
        let size: Int
        let depth: Int
        let load: [String: String]
        let cpuNsPerMessage: Double
        let note: String
        var rate: Double { Double(load["msgs_per_s"] ?? "0") ?? 0 }
    }

    var connections = 100
    var sizes = [64, 4096]
    var depth = 1
    var duration = 5.0
    var serverCPU = 0
    var loadCPU = 1
    var callgrind = false
    /// Above 1: also a Gnet echo of that many loops in one process, on every CPU.
    var loops = 1
    var rounds = 1

    func servers() -> [Server] {
        let dir = ProcFS.executableDirectory()
        return [
            Server(name: "C reference (epoll)", argv: ["\(dir)/gnet-c-echo", "0"]),
            Server(name: "Gnet", argv: ["\(dir)/gnet-bench", "serve", "--port", "0"]),
            Server(name: "gnetd echo service (1 worker)", argv: ["\(dir)/gnetd", "--config", "\(scratch)/gnetd.yaml"],
                   daemonControl: "\(scratch)/control.sock"),
        ] + (loops > 1 ? [Server(name: "Gnet, \(loops) loops (all CPUs)", argv: ["\(dir)/gnet-bench", "serve", "--port", "0", "--loops", "\(loops)"],
                                 pinned: false)] : [])
    }

    /// A private directory for gnetd's configuration and control socket.
    var scratch: String { "/tmp/gnet-bench-\(getpid())" }

    private func writeDaemonConfig() {
        mkdir(scratch, 0o700)
        let text = """
        workers: 1
        log_level: warning
        control:
          socket: \(scratch)/control.sock
        services:
          - name: echo
            protocol: echo
            listen: ["tcp://127.0.0.1:0"]

        """
        let fd = open("\(scratch)/gnetd.yaml", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Every process of a server: gnetd's supervisor and workers, or the one process.
    private func pids(_ s: Server, _ main: ChildProcess) -> [pid_t] {
        guard let control = s.daemonControl, let stats = try? ControlClient.request(socket: control, command: "stats", timeout: 10) else {
            return [main.pid]
        }
        let workers = (stats["workers"]?.array ?? []).compactMap { $0["pid"]?.int }.map { pid_t(truncatingIfNeeded: $0) }
        return [main.pid] + workers
    }

    func run() -> Int32 {
        var rows: [Row] = []
        // Rounds interleave the servers (C, Gnet, C, Gnet, …) so drift on a shared machine
        // hits both alike; the table sums them.
        for round in 0..<rounds {
            for size in sizes {
                for s in servers() {
                    guard let row = measure(s, size: size) else { return 1 }
                    rows.append(row)
                    printError("round \(round + 1) \(row.server) size=\(size): \(row.load["msgs_per_s"] ?? "?") msg/s, \(fmt(row.cpuNsPerMessage, 0)) ns CPU/msg \(row.note)\n")
                }
            }
        }
        printTable(aggregate(rows))
        unlink("\(scratch)/gnetd.yaml")
        rmdir(scratch)
        if callgrind { return runCallgrind() }
        return 0
    }

    /// One row per (server, size): messages and CPU summed over rounds, latencies the median
    /// of the rounds' values.
    private func aggregate(_ rows: [Row]) -> [Row] {
        var out: [Row] = []
        for size in sizes {
            for s in servers() {
                let mine = rows.filter { $0.server == s.name && $0.size == size }
                guard !mine.isEmpty else { continue }
                var messages = 0.0, seconds = 0.0, cpu = 0.0, bytes = 0.0
                for r in mine {
                    let m = Double(r.load["messages"] ?? "0") ?? 0
                    let sec = Double(r.load["seconds"] ?? "0") ?? 0
                    messages += m
                    seconds += sec
                    cpu += r.cpuNsPerMessage * m
                    bytes += (Double(r.load["MB_per_s"] ?? "0") ?? 0) * sec
                }
                func median(_ key: String) -> String {
                    let v = mine.compactMap { Double($0.load[key] ?? "") }.sorted()
                    return v.isEmpty ? "?" : fmt(v[v.count / 2], 0)
                }
                let load = ["messages": "\(Int(messages))", "msgs_per_s": "\(Int(messages / max(seconds, 1e-9)))",
                            "MB_per_s": fmt(bytes / max(seconds, 1e-9), 1), "p50_us": median("p50_us"), "p99_us": median("p99_us")]
                let notes = mine.map(\.note).filter { !$0.isEmpty }
                out.append(Row(server: s.name, size: size, depth: depth, load: load, cpuNsPerMessage: cpu / max(messages, 1),
                               note: notes.joined(separator: " ")))
            }
        }
        return out
    }

    private func startServer(_ s: Server, prefix: [String]) -> (ChildProcess, Int)? {
        if s.daemonControl != nil { writeDaemonConfig() }
        let p: ChildProcess
        do { p = try ChildProcess(prefix + s.argv) } catch {
            printError("cannot start \(s.argv[0]): \(error)\n")
            return nil
        }
        if let control = s.daemonControl {
            for _ in 0..<600 {
                if let status = try? ControlClient.request(socket: control, command: "status", timeout: 5), status["state"]?.string == "serving",
                   let listen = status["services"]?[0]?["listen"]?[0]?.string,
                   let port = Int(listen.split(separator: ":").last ?? "") {
                    return (p, port)
                }
                usleep(50_000)
            }
            printError("\(s.name) did not become ready\n")
            return nil
        }
        guard let line = p.readLine(timeout: 120), line.hasPrefix("listening on "), let port = Int(line.dropFirst(13)) else {
            printError("\(s.name) did not report its port\n")
            return nil
        }
        return (p, port)
    }

    private func load(port: Int, size: Int, seconds: Double, messages: Int = 0, connections: Int) -> [String: String]? {
        var argv = ["taskset", "-c", "\(loadCPU)", "\(ProcFS.executableDirectory())/gnet-bench", "load", "--port", "\(port)",
                    "--connections", "\(connections)", "--size", "\(size)", "--depth", "\(depth)"]
        argv += messages > 0 ? ["--messages", "\(messages)"] : ["--duration", "\(seconds)"]
        guard let p = try? ChildProcess(argv) else { return nil }
        let out = p.readAll(timeout: seconds + 600)
        _ = p.wait(timeout: 60)
        var kv: [String: String] = [:]
        for field in out.split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { kv[String(parts[0])] = String(parts[1]) }
        }
        return kv["messages"] == nil ? nil : kv
    }

    private func measure(_ s: Server, size: Int) -> Row? {
        guard let (server, port) = startServer(s, prefix: s.pinned ? ["taskset", "-c", "\(serverCPU)"] : []) else { return nil }
        defer { server.stop() }
        _ = load(port: port, size: size, seconds: 1, connections: connections)   // warm-up
        let processes = pids(s, server)
        let before = processes.reduce(Int64(0)) { $0 + ProcFS.cpuNanoseconds($1) }
        guard let result = load(port: port, size: size, seconds: duration, connections: connections) else {
            printError("load against \(s.name) failed\n")
            return nil
        }
        let cpu = Double(processes.reduce(Int64(0)) { $0 + ProcFS.cpuNanoseconds($1) } - before)
        let messages = Double(result["messages"] ?? "0") ?? 0
        let errors = result["errors"] ?? "?"
        return Row(server: s.name, size: size, depth: depth, load: result, cpuNsPerMessage: messages > 0 ? cpu / messages : 0,
                   note: errors == "0" ? "" : "(errors=\(errors))")
    }

    private func printTable(_ rows: [Row]) {
        print("| server | msg size | conns | depth | rounds | msgs/s | MB/s | p50 µs | p99 µs | server CPU ns/msg | msgs/s ÷ C | CPU/msg ÷ C |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows {
            let ref = rows.first { $0.server.hasPrefix("C ") && $0.size == r.size }
            let rateRatio = ref.map { r.rate / max($0.rate, 1) } ?? 0
            let cpuRatio = ref.map { r.cpuNsPerMessage / max($0.cpuNsPerMessage, 1) } ?? 0
            print("| \(r.server) | \(r.size) B | \(connections) | \(r.depth) | \(rounds) | \(r.load["msgs_per_s"] ?? "?") | \(r.load["MB_per_s"] ?? "?") | \(r.load["p50_us"] ?? "?") | \(r.load["p99_us"] ?? "?") | \(fmt(r.cpuNsPerMessage, 0)) | \(fmt(rateRatio, 2))× | \(fmt(cpuRatio, 2))× |")
        }
    }

    /// User-space instructions per message with callgrind: two runs of different lengths, so
    /// start-up and shutdown cancel out: (Ir(long) − Ir(short)) / (messages(long) − messages(short)).
    private func runCallgrind() -> Int32 {
        let short = 20_000, long = 60_000, size = 64, conns = 10
        print("")
        print("| server | user-space instructions per 64 B echo (callgrind) | ÷ C |")
        print("|---|---:|---:|")
        var reference = 0.0
        for original in servers() where original.daemonControl == nil {
            // valgrind 3.19 (Debian 12) gives up on the DWARF 5 that clang writes for C targets;
            // callgrind's totals need symbols only, so it runs a copy without debug info.
            let stripped = "/tmp/gnet-bench-callgrind-\(getpid())-\(original.argv[0].split(separator: "/").last ?? "server")"
            guard let strip = try? ChildProcess(["objcopy", "--strip-debug", original.argv[0], stripped]), strip.wait(timeout: 60) == 0 else {
                printError("objcopy --strip-debug \(original.argv[0]) failed\n")
                return 1
            }
            defer { unlink(stripped) }
            let s = Server(name: original.name, argv: [stripped] + original.argv.dropFirst())
            var totals: [Double] = []
            for messages in [short, long] {
                let out = "/tmp/gnet-bench-callgrind-\(getpid())-\(messages).out"
                guard let (server, port) = startServer(s, prefix: ["valgrind", "--tool=callgrind", "--callgrind-out-file=\(out)"]) else { return 1 }
                let r = load(port: port, size: size, seconds: 600, messages: messages, connections: conns)
                server.stop(grace: 60)
                guard r != nil, let text = ProcFS.readFile(out), let ir = callgrindTotal(text) else {
                    printError("callgrind run of \(s.name) failed\n")
                    return 1
                }
                unlink(out)
                totals.append(ir)
            }
            let perMessage = (totals[1] - totals[0]) / Double(long - short)
            if reference == 0 { reference = perMessage }
            print("| \(s.name) | \(fmt(perMessage, 1)) | \(fmt(perMessage / reference, 2))× |")
        }
        return 0
    }

    private func callgrindTotal(_ text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix("totals:") || line.hasPrefix("summary:") {
            if let v = line.split(separator: " ").dropFirst().first, let d = Double(v) { return d }
        }
        return nil
    }
}
