#if canImport(Glibc)
import Glibc
#endif
import GnetDaemon

// gnet-resp: a Redis-protocol server run by GnetDaemon's supervisor — workers, reloads,
// draining, stats, control socket and systemd readiness — written against the framework's
// public API only. Its own service kind, `resp`, sits beside gnetd's built-in ones.

let identity = DaemonIdentity(
    name: "gnet-resp", version: "0.1.0",
    config: "/etc/gnet-resp/gnet-resp.yaml", controlSocket: "/run/gnet-resp/control.sock",
    builtInConfig: """
        services:
          - name: resp
            protocol: resp
            listen: ["tcp://127.0.0.1:6380"]
        """)

let resp = ServiceKind.kind("resp", settings: RespSettings.self, counters: ["commands", "errors", "keys", "expired"]) { settings, context in
    RespService(settings: settings, context: context)
}

exit(Daemon.main(identity: identity, services: [resp] + Daemon.builtInServices))
