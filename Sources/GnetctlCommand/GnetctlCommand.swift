#if canImport(Glibc)
import Glibc
#endif
import GnetDaemon

// gnetctl's command line, read by hand (swift-argument-parser links FoundationEssentials, which
// gnetd does without); the work is in GnetDaemon.GnetctlActions.
// Exit codes: 0 ok, 1 the operation failed, 2 bad usage, 3 gnetd unreachable.

/// What a gnetctl command line asks for.
struct GnetctlRequest: Equatable {
    /// The command: stats, status, reload or stop.
    var command: String
    var socket: String?
    var config: String?
    var json = false
    var prometheus = false
    var watch: Double?
}

/// Why a command line is refused (exit 2), or something to print instead of running (exit 0).
enum GnetctlUsage: Error, Equatable {
    case help(command: String?)
    case print(String)
    case invalid(String)
}

/// The commands, each with its one-line summary.
let gnetctlCommands: [(name: String, abstract: String)] = [
    ("stats", "Per-worker connections and traffic, with totals (--watch: per-second rates)."),
    ("status", "State, generation, workers with their last errors, and listen addresses."),
    ("reload", "Reload the configuration; waits until the new workers serve or the reload fails."),
    ("stop", "Stop gracefully: drain every worker, then exit."),
]

/// The environment variable naming the control socket when neither -s nor -c does.
let gnetctlSocketVariable = "GNETCTL_SOCKET"

extension GnetctlRequest {
    /// Reads `arguments` (without the program name). Options may come before or after the
    /// command, as `-s PATH`, `--socket PATH` or `--socket=PATH`.
    static func parse(_ arguments: [String]) throws(GnetctlUsage) -> GnetctlRequest {
        var command: String?
        var socket: String?, config: String?, json = false, prometheus = false, watch: String?, help = false
        var options = CommandLineOptions(arguments)
        while let item = options.next() {
            switch item {
            case .option(let name, let inline) where ["-s", "--socket", "-c", "--config", "--watch"].contains(name):
                guard let v = options.value(inline) else { throw .invalid("missing value for '\(name)'") }
                switch name {
                case "-s", "--socket": socket = v
                case "-c", "--config": config = v
                default: watch = v
                }
            case .option("--json", nil): json = true
            case .option("--prometheus", nil): prometheus = true
            case .option("-h", nil), .option("--help", nil): help = true
            case .option("--version", nil):
                throw .print(BuildInfo.versionLine(DaemonIdentity(name: "gnetctl", version: DaemonIdentity.gnetd.version, config: "", controlSocket: "")))
            case .option("--generate-completion-script", let inline):
                guard options.value(inline) == "bash" else { throw .invalid("--generate-completion-script takes bash") }
                throw .print(BashCompletion.gnetctl(commands: gnetctlCommands.map(\.name)))
            case .option(let name, _):
                throw .invalid("unknown option '\(name.prefix(100))'")
            case .operand("help") where command == nil:
                help = true
                command = options.remaining.first
                guard options.remaining.count <= 1 else { throw .invalid("unexpected argument '\(options.remaining[1].prefix(100))'") }
                if command != nil { _ = options.next() }
            case .operand(let word):
                guard command == nil else { throw .invalid("unexpected argument '\(word.prefix(100))'") }
                command = word
            }
        }
        if let command, !gnetctlCommands.contains(where: { $0.name == command }) {
            throw .invalid("unknown command '\(command.prefix(100))' (stats, status, reload or stop)")
        }
        if help { throw .help(command: command) }
        guard let command else { throw .invalid("a command is needed: stats, status, reload or stop") }
        if socket != nil && config != nil { throw .invalid("give --socket or --config, not both") }
        var request = GnetctlRequest(command: command, socket: socket, config: config, json: json)
        if prometheus {
            guard command == "stats" else { throw .invalid("--prometheus is for stats") }
            guard !json else { throw .invalid("give --json or --prometheus, not both") }
            request.prometheus = true
        }
        if let watch {
            guard command == "stats" else { throw .invalid("--watch is for stats") }
            guard let seconds = Double(watch), seconds > 0, seconds <= 3600 else {
                throw .invalid("--watch takes a number of seconds from 0 to 3600")
            }
            request.watch = seconds
        }
        return request
    }

    /// The socket to talk to: --socket, else --config's control.socket, else $GNETCTL_SOCKET
    /// (when not empty), else the default.
    func resolvedSocket() throws(GnetctlUsage) -> String {
        if let socket { return socket }
        guard let config else {
            if let value = getenv(gnetctlSocketVariable), value.pointee != 0 { return String(cString: value) }
            return GnetctlActions.defaultSocket
        }
        do { return try ConfigLoader.controlSocket(inFile: config) } catch {
            // A file naming no socket leaves it to its daemon's default, which only gnetd's own
            // file tells (the packaged unit reloads with --config /etc/gnet/gnetd.yaml).
            let gnetd = DaemonIdentity.gnetd
            if error.path == "control.socket" && config == gnetd.configPath { return gnetd.controlSocket }
            throw .invalid("\(error)")
        }
    }

    /// The usage text of gnetctl, or of one command.
    static func usage(_ command: String? = nil) -> String {
        let options = """
            OPTIONS:
              -s, --socket <socket>   The control socket (default: $\(gnetctlSocketVariable) if set, else \(GnetctlActions.defaultSocket)).
              -c, --config <file>     A daemon's configuration file: its control.socket is the socket.
              --json                  Print the daemon's JSON answer.
            """
        if let command, let c = gnetctlCommands.first(where: { $0.name == command }) {
            let extra = command == "stats" ? " [--watch <seconds>] [--prometheus]" : ""
            let extraHelp = command == "stats" ? """

                  --watch <seconds>       Print again every SECONDS, with per-second rates, until interrupted.
                  --prometheus            Print the figures in the Prometheus text format.
                """ : ""
            return "OVERVIEW: \(c.abstract)\n\nUSAGE: gnetctl \(command) [-s <socket> | -c <file>] [--json]\(extra)\n\n\(options)\(extraHelp)\n  -h, --help              Show help information."
        }
        return "OVERVIEW: Control a running gnetd.\n\nUSAGE: gnetctl [-s <socket> | -c <file>] <command> [--json]\n\n\(options)\n  --version               Show the version.\n  -h, --help              Show help information.\n\nCOMMANDS:\n"
            + gnetctlCommands.map { "  " + $0.name + String(repeating: " ", count: 24 - $0.name.count) + $0.abstract }.joined(separator: "\n")
            + "\n\n  See 'gnetctl help <command>' for detailed help."
    }
}

/// gnetctl as a function: the `gnetctl` executable calls it, and so does `gnetd` when it is
/// started under the name `gnetctl` (the Debian package installs gnetctl as a link to gnetd, so
/// the statically linked runtime is shipped once).
public enum GnetctlMain {
    /// Parses `arguments` (without the program name), runs the command and exits with its code.
    public static func run(_ arguments: [String]) -> Never {
        let request: GnetctlRequest
        let socket: String
        do {
            request = try GnetctlRequest.parse(arguments)
            socket = try request.resolvedSocket()
        } catch {
            switch error {
            case .help(let command):
                print(GnetctlRequest.usage(command))
                exit(0)
            case .print(let text):
                print(text)
                exit(0)
            case .invalid(let message):
                standardError("gnetctl: \(message)\nUSAGE: gnetctl [-s <socket> | -c <file>] <command> [--json]\n  See 'gnetctl --help' for more.")
                exit(2)
            }
        }
        switch request.command {
        case "stats" where request.prometheus: exit(GnetctlActions.metrics(socket: socket))
        case "stats": exit(GnetctlActions.stats(socket: socket, json: request.json, watch: request.watch))
        case "status": exit(GnetctlActions.status(socket: socket, json: request.json))
        case "reload": exit(GnetctlActions.reload(socket: socket, json: request.json))
        default: exit(GnetctlActions.stop(socket: socket, json: request.json))
        }
    }
}

/// Writes `text` and a newline to standard error (unbuffered; at priority `err` in the journal).
private func standardError(_ text: String) { GnetctlActions.reportError(text) }
