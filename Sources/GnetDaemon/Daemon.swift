#if canImport(Glibc)
import Glibc
#endif
import Gnet
import Logging

/// What a daemon built on GnetDaemon calls itself: its name in logs, `--help` and `--version`,
/// and where it looks for its configuration and control socket by default — so that two
/// daemons built on the framework never collide on a host.
public struct DaemonIdentity: Sendable {
    /// The program's name, e.g. `gnet-resp`.
    public var name: String
    /// Its version, printed by `--version` and reported by `gnetctl status`.
    public var version: String
    /// The configuration file read when `--config` is not given (if it exists).
    public var configPath: String
    /// The control socket when the configuration names none.
    public var controlSocket: String
    /// The configuration run when there is no file at `configPath` and no `--config`; nil means
    /// a file is required.
    public var builtInConfig: String?

    /// An identity; `builtInConfig` is the configuration run without a file (nil: a file is required).
    public init(name: String, version: String, config: String, controlSocket: String, builtInConfig: String? = nil) {
        self.name = name; self.version = version; configPath = config; self.controlSocket = controlSocket
        self.builtInConfig = builtInConfig
    }

    /// gnetd's: `/etc/gnet/gnetd.yaml`, `/run/gnet/control.sock`, and an echo service on port
    /// 9000 (TCP and UDP) without a file.
    public static let gnetd = DaemonIdentity(
        name: "gnetd", version: "0.1.0", config: "/etc/gnet/gnetd.yaml", controlSocket: "/run/gnet/control.sock",
        builtInConfig: """
            services:
              - name: echo
                protocol: echo
                listen: ["tcp://0.0.0.0:9000", "udp://0.0.0.0:9000"]
            """)
}

/// The command line of a daemon built on GnetDaemon: `NAME [--config FILE] [--check]`
/// (`--version`, `--help`, `--generate-completion-script bash`); its workers are the same
/// binary started under a title of their own (`gnetd: worker 0 (generation 3)`). gnetd is
/// `Daemon.main(identity: .gnetd, services: Daemon.builtInServices)`.
public enum Daemon {
    /// Runs the daemon described by `identity` with the service kinds `services`, on the
    /// process's arguments; returns the exit code: 0 success, 1 failure at run time, 2 bad usage
    /// or an invalid configuration. The same call, in the same binary, runs the workers: they are
    /// started with their description in the environment and find their service kinds here.
    public static func main(identity: DaemonIdentity, services: [ServiceKind],
                            arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Int32 {
        LogLine.program = identity.name
        // A supervisor that re-executed itself into this binary: its handoff comes before
        // anything else (its arguments were its first image's).
        do throws(HandoffError) {
            if let handoff = try ReexecHandoff.takeFromEnvironment() { return resume(handoff, identity: identity, services: services) }
        } catch {
            LogLine.write(.error, "cannot start: \(error)")
            return 1
        }
        if WorkerProcess.isWorker(identity, arguments: arguments) { return WorkerProcess.run(identity: identity, kinds: services) }
        let configPath: String?, check: Bool
        do {
            switch try DaemonCommand.parse(arguments, identity: identity) {
            case .print(let text):
                print(text)
                return 0
            case .run(let config, let checkOnly):
                configPath = config
                check = checkOnly
            }
        } catch {
            printError("\(identity.name): \(error)\n\(DaemonCommand.usage(identity))")
            return 2
        }
        func usageError(_ message: String) -> Int32 {
            printError("\(identity.name): \(message)\n\(DaemonCommand.usage(identity))")
            return 2
        }
        let path = configPath ?? (access(identity.configPath, F_OK) == 0 ? identity.configPath : nil)
        let config: DaemonConfig
        do throws(ConfigError) {
            if let path {
                config = try ConfigLoader.load(path: path, kinds: services, defaultControlSocket: identity.controlSocket)
            } else if let text = identity.builtInConfig {
                config = try ConfigLoader.parse(text, file: "<built-in>", kinds: services, defaultControlSocket: identity.controlSocket)
            } else {
                return usageError("no configuration: \(identity.configPath) does not exist; name one with --config")
            }
        } catch {
            // Started to serve, an invalid configuration is a failed start: an error in the journal.
            if check { printError("\(identity.name): \(error)") } else { LogLine.write(.error, "cannot start: \(error)") }
            return 2
        }
        if check {
            print("\(identity.name): configuration \(path ?? "<built-in>") is valid: \(config.services.count) services, \(config.resolvedWorkers) workers")
            return 0
        }
        return supervise(identity: identity, services: services, config: config, configPath: path)
    }

    /// Runs the supervisor (continuing the one described by `handoff` after a re-execution);
    /// returns the exit code.
    private static func supervise(identity: DaemonIdentity, services: [ServiceKind], config: DaemonConfig, configPath: String?,
                                  handoff: ReexecHandoff? = nil) -> Int32 {
        var logger = Logger(label: identity.name) { _ in DaemonLogHandler() }
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        do {
            let supervisor = try Supervisor(identity: identity, kinds: services, config: config, configPath: configPath, logger: logger,
                                            adopting: handoff)
            return try supervisor.run()
        } catch {
            LogLine.write(.error, "cannot start: \(error)")
            return 1
        }
    }

    /// Continues a supervisor that re-executed itself into this binary: the configuration its
    /// workers run (as this binary reads it; the file's, if this binary no longer reads that
    /// text), then its sockets, workers and state.
    private static func resume(_ handoff: ReexecHandoff, identity: DaemonIdentity, services: [ServiceKind]) -> Int32 {
        let config: DaemonConfig
        do throws(ConfigError) {
            config = try ConfigLoader.parse(handoff.configText, file: handoff.configFile, kinds: services, defaultControlSocket: identity.controlSocket)
        } catch {
            guard let path = handoff.configPath,
                  let current = try? ConfigLoader.load(path: path, kinds: services, defaultControlSocket: identity.controlSocket) else {
                LogLine.write(.error, "cannot continue after the re-execution: the running configuration: \(error)")
                return 1
            }
            config = current
        }
        return supervise(identity: identity, services: services, config: config, configPath: handoff.configPath, handoff: handoff)
    }
}

/// Writes `text` and a newline to standard error in one write: a command-line error of gnetd or
/// gnetctl. When standard error is the journal (gnetctl run by the unit's `ExecReload=`, gnetd's
/// refusal to start) each line carries the `err` priority, so `journalctl -p err` shows it.
func printError(_ text: String) {
    let prefix = LogLine.toJournal ? "<\(SyslogPriority.error.rawValue)>" : ""
    var line = text.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 }.joined(separator: "\n") + "\n"
    line.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
