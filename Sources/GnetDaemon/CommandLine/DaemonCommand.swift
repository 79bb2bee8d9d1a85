import ArgumentParser

/// A daemon's command line, parsed by swift-argument-parser: `NAME [--config FILE] [--check]`,
/// `--version`, `--help` and `--generate-completion-script SHELL`. The name, the default
/// configuration path and the version come from the daemon's `DaemonIdentity`.
struct DaemonCommand: ParsableCommand {
    /// The identity the command line describes, set before parsing (one daemon per process).
    nonisolated(unsafe) static var identity = DaemonIdentity.gnetd

    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: identity.name,
            abstract: "Run the \(identity.name) network daemon: a supervisor and one worker process per core.",
            discussion: """
                Without --config, \(identity.configPath) is read if it exists\(identity.builtInConfig == nil ? "" : ", else the built-in defaults are run").
                Exit codes: 0 success, 1 failure at run time, 2 bad usage or an invalid configuration.
                """,
            version: BuildInfo.versionLine(identity))
    }

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("The configuration file.", valueName: "file"),
            completion: .file(extensions: ["yaml", "yml"]))
    var config: String?

    @Flag(name: [.customShort("t"), .long], help: "Validate the configuration and exit: 0 if valid, 2 with the reason if not.")
    var check = false

    func validate() throws {
        if let config, config.isEmpty { throw ValidationError("--config needs a file") }
    }
}
