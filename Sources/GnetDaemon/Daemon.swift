#if canImport(Glibc)
import Glibc
#endif
import Gnet
import Logging

/// gnetd's command line: `gnetd [--config FILE] [--check]`, and the internal `--worker` mode.
/// Returns the process exit code: 0 success, 1 failure at run time, 2 bad usage or an invalid
/// configuration.
public enum Daemon {
    public static let defaultConfigPath = "/etc/gnet/gnetd.yaml"

    public static let usage = """
    usage: gnetd [--config FILE] [--check]
           gnetd --version | --help

      --config FILE  configuration file (default \(defaultConfigPath) if it exists, else the built-in defaults)
      --check        validate the configuration and exit: 0 if valid, 2 with the reason if not
    """

    public static func main(_ arguments: [String]) -> Int32 {
        if arguments.first == "--worker" && arguments.count == 1 { return WorkerProcess.run() }
        var configPath: String? = nil
        var check = false
        var i = 0
        while i < arguments.count {
            switch arguments[i] {
            case "--config", "-c":
                guard i + 1 < arguments.count, !arguments[i + 1].isEmpty else { return usageError("--config needs a file") }
                configPath = arguments[i + 1]
                i += 2
            case "--check", "-t":
                check = true
                i += 1
            case "--version":
                print("gnetd \(Supervisor.version)")
                return 0
            case "--help", "-h":
                print(usage)
                return 0
            default:
                return usageError("unknown argument \"\(arguments[i].prefix(100))\"")
            }
        }
        let path = configPath ?? (access(defaultConfigPath, F_OK) == 0 ? defaultConfigPath : nil)
        let config: DaemonConfig
        do {
            config = try path.map { p throws(ConfigError) in try ConfigLoader.load(path: p) } ?? DaemonConfig.builtIn
        } catch {
            printError("gnetd: \(error)")
            return 2
        }
        if check {
            print("gnetd: configuration \(path ?? "<built-in>") is valid: \(config.services.count) services, \(config.resolvedWorkers) workers")
            return 0
        }
        var logger = Logger(label: "gnetd") { _ in StreamLogHandler.standardError(label: "gnetd") }
        logger.logLevel = Logger.Level(rawValue: config.logLevel == "warning" ? "warning" : config.logLevel) ?? .info
        do {
            let supervisor = try Supervisor(config: config, configPath: path, logger: logger)
            return try supervisor.run()
        } catch {
            printError("gnetd: \(error)")
            return 1
        }
    }

    static func usageError(_ message: String) -> Int32 {
        printError("gnetd: \(message)\n\(usage)")
        return 2
    }
}

func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
