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
    var watch: Double?
}

/// Why a command line is refused (exit 2), or a request for help (exit 0).
enum GnetctlUsage: Error, Equatable {
    case help(command: String?)
    case invalid(String)
}

/// The commands, each with its one-line summary.
let gnetctlCommands: [(name: String, abstract: String)] = [
    ("stats", "Per-worker connections and traffic, with totals."),
    ("status", "State, generation, workers and listen addresses."),
    ("reload", "Reload the configuration; waits until the new workers serve or the reload fails."),
    ("stop", "Stop gracefully: drain every worker, then exit."),
]

extension GnetctlRequest {
    /// Reads `arguments` (without the program name). Options may come before or after the
    /// command, as `-s PATH`, `--socket PATH` or `--socket=PATH`.
    static func parse(_ arguments: [String]) throws(GnetctlUsage) -> GnetctlRequest {
        var command: String?
        var socket: String?, config: String?, json = false, watch: String?, help = false
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            var name = argument, inlineValue: String?
            if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
                name = String(argument[..<eq])
                inlineValue = String(argument[argument.index(after: eq)...])
            }
            func value() throws(GnetctlUsage) -> String {
                if let inlineValue { return inlineValue }
                guard let v = rest.popFirst() else { throw .invalid("missing value for '\(name)'") }
                return v
            }
            switch name {
            case "-s", "--socket": socket = try value()
            case "-c", "--config": config = try value()
            case "--watch": watch = try value()
            case "--json" where inlineValue == nil: json = true
            case "-h": help = true
            case "--help" where inlineValue == nil: help = true
            default:
                guard !argument.hasPrefix("-") || argument == "-" else { throw .invalid("unknown option '\(argument)'") }
                if command == nil, argument == "help" {
                    help = true
                    command = rest.popFirst()
                    guard rest.isEmpty else { throw .invalid("unexpected argument '\(rest.first ?? "")'") }
                } else if command == nil {
                    command = argument
                } else {
                    throw .invalid("unexpected argument '\(argument)'")
                }
            }
        }
        if let command, !gnetctlCommands.contains(where: { $0.name == command }) {
            throw .invalid("unknown command '\(command)' (stats, status, reload or stop)")
        }
        if help { throw .help(command: command) }
        guard let command else { throw .invalid("a command is needed: stats, status, reload or stop") }
        if socket != nil && config != nil { throw .invalid("give --socket or --config, not both") }
        var request = GnetctlRequest(command: command, socket: socket, config: config, json: json)
        if let watch {
            guard command == "stats" else { throw .invalid("--watch is for stats") }
            guard let seconds = Double(watch), seconds > 0, seconds <= 3600 else {
                throw .invalid("--watch takes a number of seconds from 0 to 3600")
            }
            request.watch = seconds
        }
        return request
    }

    /// The usage text of gnetctl, or of one command.
    static func usage(_ command: String? = nil) -> String {
        let options = """
            OPTIONS:
              -s, --socket <socket>   The control socket (default \(GnetctlActions.defaultSocket)).
              -c, --config <file>     A daemon's configuration file: its control.socket is the socket.
              --json                  Print the daemon's JSON answer.
            """
        if let command, let c = gnetctlCommands.first(where: { $0.name == command }) {
            let watch = command == "stats" ? " [--watch <seconds>]" : ""
            let watchHelp = command == "stats" ? "\n  --watch <seconds>       Print again every SECONDS until interrupted." : ""
            return "OVERVIEW: \(c.abstract)\n\nUSAGE: gnetctl \(command) [-s <socket> | -c <file>] [--json]\(watch)\n\n\(options)\(watchHelp)\n  -h, --help              Show help information."
        }
        return "OVERVIEW: Control a running gnetd.\n\nUSAGE: gnetctl [-s <socket> | -c <file>] <command> [--json]\n\n\(options)\n  -h, --help              Show help information.\n\nCOMMANDS:\n"
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
        do {
            request = try GnetctlRequest.parse(arguments)
        } catch {
            switch error {
            case .help(let command):
                print(GnetctlRequest.usage(command))
                exit(0)
            case .invalid(let message):
                standardError("gnetctl: \(message)\nUSAGE: gnetctl [-s <socket> | -c <file>] <command> [--json]\n  See 'gnetctl --help' for more.")
                exit(2)
            }
        }
        let socket: String
        if let config = request.config {
            do { socket = try ConfigLoader.controlSocket(inFile: config) } catch {
                standardError("gnetctl: \(error)")
                exit(2)
            }
        } else {
            socket = request.socket ?? GnetctlActions.defaultSocket
        }
        switch request.command {
        case "stats": exit(GnetctlActions.stats(socket: socket, json: request.json, watch: request.watch))
        case "status": exit(GnetctlActions.status(socket: socket, json: request.json))
        case "reload": exit(GnetctlActions.reload(socket: socket, json: request.json))
        default: exit(GnetctlActions.stop(socket: socket, json: request.json))
        }
    }
}

/// Writes `text` and a newline to standard error (unbuffered, like the daemon's messages).
private func standardError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
