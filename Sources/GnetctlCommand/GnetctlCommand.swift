#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import GnetDaemon

// gnetctl's command line (swift-argument-parser); the work is in GnetDaemon.GnetctlActions.
// Exit codes: 0 ok, 1 the operation failed, 2 bad usage, 3 gnetd unreachable.

struct SocketOption: ParsableArguments {
    /// The environment variable naming the socket when neither option is given.
    static let environmentKey = "GNETCTL_SOCKET"

    @Option(name: [.customShort("s"), .customLong("socket")],
            help: "The control socket (default: $\(SocketOption.environmentKey) if set, else \(GnetctlActions.defaultSocket)).")
    var socketPath: String?
    @Option(name: [.customShort("c"), .long],
            help: "A daemon's configuration file: its control.socket is the socket (gnetd's default if \(DaemonIdentity.gnetd.configPath) names none).")
    var config: String?

    func validate() throws {
        if socketPath != nil && config != nil { throw ValidationError("give --socket or --config, not both") }
    }

    /// The socket to talk to: --socket, else --config's control.socket, else $GNETCTL_SOCKET
    /// (when not empty), else the default.
    var socket: String {
        get throws {
            if let socketPath { return socketPath }
            guard let config else {
                if let value = getenv(Self.environmentKey), value.pointee != 0 { return String(cString: value) }
                return GnetctlActions.defaultSocket
            }
            do { return try ConfigLoader.controlSocket(inFile: config) } catch {
                // A file naming no socket leaves it to its daemon's default, which only gnetd's
                // own file tells (the packaged unit reloads with --config /etc/gnet/gnetd.yaml).
                let gnetd = DaemonIdentity.gnetd
                if error.path == "control.socket" && config == gnetd.configPath { return gnetd.controlSocket }
                throw ValidationError("\(error)")
            }
        }
    }
}

struct Gnetctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gnetctl",
        abstract: "Control a running gnetd.",
        version: BuildInfo.versionLine(DaemonIdentity(name: "gnetctl", version: DaemonIdentity.gnetd.version, config: "", controlSocket: "")),
        subcommands: [Stats.self, Status.self, Reload.self, Stop.self]
    )
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per-worker connections and traffic, with totals.")
    @OptionGroup var options: SocketOption
    @Flag(help: "Print the daemon's JSON answer.") var json = false
    @Option(help: "Print again every SECONDS until interrupted.") var watch: Double?

    func validate() throws {
        if let w = watch, !(w > 0 && w <= 3600) { throw ValidationError("--watch takes a number of seconds from 0 to 3600") }
    }

    func run() throws {
        let code = GnetctlActions.stats(socket: try options.socket, json: json, watch: watch)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "State, generation, workers and listen addresses.")
    @OptionGroup var options: SocketOption
    @Flag(help: "Print the daemon's JSON answer.") var json = false
    func run() throws {
        let code = GnetctlActions.status(socket: try options.socket, json: json)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reload the configuration; waits until the new workers serve or the reload fails.")
    @OptionGroup var options: SocketOption
    @Flag(help: "Print the daemon's JSON answer.") var json = false
    func run() throws {
        let code = GnetctlActions.reload(socket: try options.socket, json: json)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop gracefully: drain every worker, then exit.")
    @OptionGroup var options: SocketOption
    @Flag(help: "Print the daemon's JSON answer.") var json = false
    func run() throws {
        let code = GnetctlActions.stop(socket: try options.socket, json: json)
        if code != 0 { throw ExitCode(code) }
    }
}

/// gnetctl as a function: the `gnetctl` executable calls it, and so does `gnetd` when it is
/// started under the name `gnetctl` (the Debian package installs gnetctl as a link to gnetd, so
/// the statically linked runtime is shipped once).
public enum GnetctlMain {
    /// Parses `arguments` (without the program name), runs the command and exits with its code.
    public static func run(_ arguments: [String]) -> Never {
        var arguments = arguments
        // `gnetctl -s PATH stats` and `gnetctl stats -s PATH` both work (and so with -c): a
        // leading socket or config option is moved behind the subcommand before parsing.
        if arguments.count >= 3, ["-s", "--socket", "-c", "--config"].contains(arguments[0]) {
            let option = Array(arguments[0...1])
            arguments.removeFirst(2)
            arguments.insert(contentsOf: option, at: 1)
        } else if let first = arguments.first, first.hasPrefix("--socket=") || first.hasPrefix("--config=") {
            arguments.removeFirst()
            arguments.insert(first, at: min(1, arguments.count))
        }
        do {
            var command = try Gnetctl.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            if Gnetctl.exitCode(for: error) == .success {
                print(Gnetctl.fullMessage(for: error))
                exit(0)
            }
            var line = "gnetctl: \(Gnetctl.fullMessage(for: error))\n"
            line.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
            exit(2)
        }
    }
}
