#if canImport(Glibc)
import Glibc
#endif
import GnetDaemon
import GnetResp

// gnet-resp: a Redis-protocol server run by GnetDaemon's supervisor — workers, reloads,
// draining, stats, control socket and systemd readiness — written against the framework's
// public API only. Its own service kind, `resp`, sits beside gnetd's built-in ones.
exit(Daemon.main(identity: RespDaemon.identity, services: [RespDaemon.kind] + Daemon.builtInServices))
