import GnetDaemon

/// gnet-resp as a daemon built on GnetDaemon: its identity and its service kind, `resp`. The
/// `gnet-resp` executable is `Daemon.main` with these; tests use the kind directly.
public enum RespDaemon {
    /// The program's name, version, default config path and control socket, and the config it
    /// runs without one (a `resp` service on 127.0.0.1:6380).
    public static let identity = DaemonIdentity(
        name: "gnet-resp", version: "0.1.0",
        config: "/etc/gnet-resp/gnet-resp.yaml", controlSocket: "/run/gnet-resp/control.sock",
        builtInConfig: """
            services:
              - name: resp
                protocol: resp
                listen: ["tcp://127.0.0.1:6380"]
            """)

    /// The `resp` service kind: settings `max_value_size`; counters `commands`, `errors`,
    /// `keys` (a gauge) and `expired`.
    public static let kind = ServiceKind.kind("resp", settings: RespSettings.self, counters: ["commands", "errors", "keys", "expired"]) { settings, context in
        RespService(settings: settings, context: context)
    }
}
