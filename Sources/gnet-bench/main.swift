#if canImport(Glibc)
import Glibc
#endif

// gnet-bench: echo load generator, the Gnet echo server under test, and the side-by-side
// comparison with the C reference. Argument parsing only; the work is in the other files.

let usage = """
usage:
  gnet-bench compare [--connections N] [--sizes 64,4096] [--depth D] [--duration S]
                     [--server-cpu C] [--load-cpu C] [--rounds R] [--callgrind] [--loops N]
  gnet-bench load --port P [--host H] [--connections N] [--size B] [--depth D]
                  [--duration S | --messages M] [--cpu C]
  gnet-bench serve [--port P] [--cpu C] [--edge-triggered] [--loops N]
  gnet-bench serve-http [--port P] [--cpu C] [--access-log PATH]
  gnet-bench codec [--frames N] [--rounds R]
"""

/// Parsed `--name value` flags and `--switch`es, consumed as they are read.
struct Flags {
    let command: String
    var values: [String: String] = [:]
    var switches: Set<String> = []

    init(_ argv: [String]) {
        guard let first = argv.first else { Flags.fail("missing command") }
        command = first
        var i = 1
        while i < argv.count {
            let a = argv[i]
            guard a.hasPrefix("--"), a.count > 2 else { Flags.fail("unexpected argument \(a)") }
            let name = String(a.dropFirst(2))
            if ["callgrind", "edge-triggered"].contains(name) {
                switches.insert(name)
                i += 1
                continue
            }
            guard i + 1 < argv.count else { Flags.fail("\(a) needs a value") }
            values[name] = argv[i + 1]
            i += 2
        }
    }

    static func fail(_ message: String) -> Never {
        printError("gnet-bench: \(message)\n\(usage)\n")
        exit(2)
    }

    mutating func string(_ name: String) -> String? { values.removeValue(forKey: name) }

    mutating func int(_ name: String, _ def: Int, min lo: Int = 0, max hi: Int = Int.max) -> Int {
        guard let s = values.removeValue(forKey: name) else { return def }
        guard let v = Int(s), v >= lo, v <= hi else { Flags.fail("--\(name) takes a whole number from \(lo) to \(hi), not \(s)") }
        return v
    }

    mutating func seconds(_ name: String, _ def: Double) -> Double {
        guard let s = values.removeValue(forKey: name) else { return def }
        guard let v = Double(s), v > 0, v < 86400 else { Flags.fail("--\(name) takes a positive number of seconds, not \(s)") }
        return v
    }

    func finish() {
        if let extra = values.keys.sorted().first { Flags.fail("unknown option --\(extra) for \(command)") }
    }
}

func runMain() -> Int32 {
    var f = Flags(Array(CommandLine.arguments.dropFirst()))
    switch f.command {
    case "serve":
        let port = f.int("port", 0, max: 65535)
        let cpu = f.int("cpu", -1, min: -1, max: 1023)
        let loops = f.int("loops", 1, min: 0, max: 1024)
        f.finish()
        return serveEcho(port: port, cpu: cpu, edgeTriggered: f.switches.contains("edge-triggered"), loops: loops)
    case "serve-http":
        let port = f.int("port", 0, max: 65535)
        let cpu = f.int("cpu", -1, min: -1, max: 1023)
        let log = f.string("access-log")
        f.finish()
        return serveHTTP(port: port, cpu: cpu, accessLog: log)
    case "load":
        var c = LoadGenerator.Config()
        c.host = f.string("host") ?? "127.0.0.1"
        c.port = f.int("port", 0, min: 0, max: 65535)
        if c.port == 0 { Flags.fail("--port is required") }
        c.connections = f.int("connections", 100, min: 1, max: 100_000)
        c.size = f.int("size", 64, min: 1, max: 64 << 20)
        c.depth = f.int("depth", 1, min: 1, max: 1024)
        c.duration = f.seconds("duration", 5)
        c.messages = f.int("messages", 0)
        c.cpu = f.int("cpu", -1, min: -1, max: 1023)
        f.finish()
        let report = LoadGenerator(config: c).run()
        print(report.line)
        return report.errors == 0 ? 0 : 1
    case "compare":
        var c = Comparison()
        c.connections = f.int("connections", 100, min: 1, max: 100_000)
        if let s = f.string("sizes") {
            let sizes = s.split(separator: ",").compactMap { Int($0) }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else { Flags.fail("--sizes takes sizes in bytes, e.g. 64,4096") }
            c.sizes = sizes
        }
        c.depth = f.int("depth", 1, min: 1, max: 1024)
        c.duration = f.seconds("duration", 5)
        c.serverCPU = f.int("server-cpu", 0, max: 1023)
        c.loadCPU = f.int("load-cpu", 1, max: 1023)
        c.rounds = f.int("rounds", 1, min: 1, max: 100)
        c.callgrind = f.switches.contains("callgrind")
        c.loops = f.int("loops", 1, min: 1, max: 1024)
        f.finish()
        return c.run()
    case "codec":
        var b = CodecBenchmark()
        b.frames = f.int("frames", 1 << 20, min: 1, max: 1 << 26)
        b.rounds = f.int("rounds", 5, min: 1, max: 1000)
        f.finish()
        return b.run()
    default:
        Flags.fail("unknown command \(f.command)")
    }
}

exit(runMain())
