/// A daemon's command line: `NAME [--config FILE] [--check]`, `--version`, `--help` and
/// `--generate-completion-script bash`. The name, the default configuration path and the
/// version come from the daemon's `DaemonIdentity`.
enum DaemonCommand {
    /// What the command line asks for besides running.
    enum Outcome: Equatable {
        case run(config: String?, check: Bool)
        /// Print this and exit 0 (help, version, a completion script).
        case print(String)
    }

    /// Why a command line is refused (exit 2).
    struct Usage: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ arguments: [String], identity: DaemonIdentity) throws(Usage) -> Outcome {
        var options = CommandLineOptions(arguments)
        var config: String?, check = false
        while let item = options.next() {
            switch item {
            case .option(let name, let inline) where name == "-c" || name == "--config":
                guard let file = options.value(inline), !file.isEmpty else { throw Usage(description: "--config needs a file") }
                config = file
            case .option("-t", nil), .option("--check", nil):
                check = true
            case .option("--version", nil):
                return .print(BuildInfo.versionLine(identity))
            case .option("-h", nil), .option("--help", nil):
                return .print(help(identity))
            case .option("--generate-completion-script", let inline):
                guard let shell = options.value(inline) else { throw Usage(description: "--generate-completion-script needs a shell (bash)") }
                guard shell == "bash" else { throw Usage(description: "no completion script for \(shell.prefix(40)); only bash") }
                return .print(BashCompletion.daemon(identity.name))
            case .option(let name, _):
                throw Usage(description: "unknown option '\(name.prefix(100))'")
            case .operand(let word):
                throw Usage(description: "unexpected argument '\(word.prefix(100))'")
            }
        }
        return .run(config: config, check: check)
    }

    static func usage(_ identity: DaemonIdentity) -> String {
        "USAGE: \(identity.name) [--config <file>] [--check]\n  See '\(identity.name) --help' for more."
    }

    static func help(_ identity: DaemonIdentity) -> String {
        """
        OVERVIEW: Run the \(identity.name) network daemon: a supervisor and one worker process per core.

        Without --config, \(identity.configPath) is read if it exists\(identity.builtInConfig == nil ? "" : ", else the built-in defaults are run").
        Exit codes: 0 success, 1 failure at run time, 2 bad usage or an invalid configuration.

        USAGE: \(identity.name) [--config <file>] [--check]

        OPTIONS:
          -c, --config <file>     The configuration file (also --config=<file>).
          -t, --check             Validate the configuration and exit: 0 if valid, 2 with the reason if not.
          --version               Show the version, the source revision and the build ID.
          --generate-completion-script bash
                                  Print a bash completion script.
          -h, --help              Show help information.
        """
    }
}
