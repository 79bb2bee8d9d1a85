import GnetctlCommand

// gnetctl: control a running gnetd (see gnetctl(8)); the command line is GnetctlCommand's.
GnetctlMain.run(Array(CommandLine.arguments.dropFirst()))
