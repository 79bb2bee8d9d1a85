#if canImport(Glibc)
import Glibc
#endif
import GnetDaemon
import GnetctlCommand

// gnetd (see gnetd(8)); started under the name `gnetctl` (a link, as the Debian package
// installs it) it is gnetctl.
let arguments = Array(CommandLine.arguments.dropFirst())
if CommandLine.arguments.first?.split(separator: "/").last == "gnetctl" {
    GnetctlMain.run(arguments)
}
exit(Daemon.main(identity: .gnetd, services: Daemon.builtInServices, arguments: arguments))
