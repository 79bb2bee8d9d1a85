#if canImport(Glibc)
import Glibc
#endif
import GnetDaemon

exit(Daemon.main(Array(CommandLine.arguments.dropFirst())))
