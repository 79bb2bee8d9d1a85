import GnetctlCommand

// gnetctl: control a running gnetd (see gnetctl(1)); the command line is GnetctlCommand's.
GnetctlMain.run(Array(CommandLine.arguments.dropFirst()))
