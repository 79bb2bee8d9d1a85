import GnetDaemon
import GnetProcess
import Testing

@Suite struct ConfigTests {
    let base = """
    services:
      - name: echo
        protocol: echo
        listen: ["tcp://127.0.0.1:9000"]

    """

    @Test func defaultsAndValues() throws {
        let c = try ConfigLoader.parse(base + "workers: 3\ndrain_timeout: 250ms\nlog_level: debug\n", file: "t.yaml")
        #expect(c.workers == .fixed(3) && c.resolvedWorkers == 3)
        #expect(c.drainTimeout == ConfigDuration(milliseconds: 250))
        #expect(c.control.socket == "/run/gnet/control.sock" && c.control.mode == "0660" && c.control.idleTimeout == .seconds(300))
        #expect(try ConfigLoader.parse(base + "control:\n  idle_timeout: 90s\n", file: "t.yaml").control.idleTimeout == .seconds(90))
        #expect(try ConfigLoader.parse(base, file: "t.yaml").workers == .auto)
        #expect(ConfigDuration(parsing: "5m")?.milliseconds == 300_000)
        #expect(ConfigDuration(parsing: "1h")?.milliseconds == 3_600_000)
        #expect(ConfigDuration(parsing: "30")?.milliseconds == 30_000)
        #expect(ConfigDuration(parsing: "3 weeks") == nil)
        #expect(ConfigSize(parsing: "64KiB")?.bytes == 65536)
        #expect(ConfigSize(parsing: "16MiB")?.bytes == 16 << 20)
        #expect(ConfigSize(parsing: "12 parsecs") == nil)
        let framed = try ConfigLoader.parse("""
        services:
          - name: frames
            protocol: framed
            listen: ["tcp://127.0.0.1:9002"]
            codec: { type: length-field, length_field_length: 4, initial_bytes_to_strip: 4, max_frame_length: 1MiB }
            max_connections: 10
            idle_timeout: 30s
            write_buffer_cap: 128KiB
        """)
        #expect((framed.services[0].settings as? FramedSettings)?.codec.maxFrameLength?.bytes == 1 << 20)
        #expect(framed.services[0].engineOptions.maxConnections == 10)
    }

    /// Each broken configuration is refused with the file, line, column and key of the problem.
    @Test(arguments: [
        ("workers: 2\nservics: []\n", "t.yaml:2:1: servics: unknown key"),
        ("workers: many\n", "t.yaml:1:10: workers: workers must be auto or 1 to 1024"),
        ("workers: 0\n", "t.yaml:1:10: workers: workers must be auto or 1 to 1024"),
        ("drain_timeout: soon\n", "t.yaml:1:16: drain_timeout: invalid duration \"soon\""),
        ("log_level: loud\n", "t.yaml:1:12: log_level: must be one of debug, info, warning, error"),
        ("control:\n  socket: relative.sock\n", "t.yaml:2:11: control.socket: must be an absolute path"),
        ("control:\n  mode: \"0999\"\n", "t.yaml:2:9: control.mode: must be octal"),
        ("control:\n  idle_timeout: 0s\n", "t.yaml:2:17: control.idle_timeout: must be 100ms to 24h, not 0s"),
        ("control:\n  idle_timeout: later\n", "t.yaml:2:17: control.idle_timeout: invalid duration \"later\""),
        ("user: nosuchuser-gnet-test\n", "t.yaml:1:7: user: no such user"),
        ("drain_timeout: 1s\ndrain_idle_grace: 2s\n", "t.yaml:2:19: drain_idle_grace: must be at most drain_timeout (1000ms)"),
        ("drain_idle_grace: 31s\n", "t.yaml:1:19: drain_idle_grace: must be"),
        ("services:\n  - name: x\n    protocol: gopher\n    listen: [\"tcp://1.2.3.4:1\"]\n", "t.yaml:3:15: services[0].protocol: protocol must be one of echo, framed, push, metrics, http"),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://\"]\n", "t.yaml:4:14: services[0].listen[0]: invalid address \"tcp://\""),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tulip://howdy\"]\n", "t.yaml:4:14: services[0].listen[0]: unsupported protocol"),
        ("services:\n  - name: x\n    protocol: echo\n    listen: []\n", "t.yaml:4:13: services[0].listen: a service needs at least one listen address"),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n    tls: {certificate: a}\n", "t.yaml:5:5: services[0].tls: \"tls\" is not supported yet"),
        ("services:\n  - name: x\n    protocol: proxy\n    listen: [\"tcp://1.2.3.4:1\"]\n", "t.yaml:3:15: services[0].protocol: protocol proxy is not supported yet"),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n    interval: 1s\n", "t.yaml:5:5: services[0].interval: unknown key"),
        ("services:\n  - name: x\n    protocol: framed\n    listen: [\"tcp://1.2.3.4:1\"]\n    codec: {type: length-field, length_field_length: 5}\n", "services[0].codec: invalid codec configuration: length field must be 1, 2, 3, 4 or 8 bytes"),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:2\"]\n", "t.yaml:5:11: services[1].name: service name \"x\" is used twice"),
        ("services:\n  - name: a\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n  - name: b\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n", "services[1].listen[0]: tcp://1.2.3.4:1 is already used by service \"a\""),
        ("services: [\n", "t.yaml:2:1: YAML:"),
        ("- just\n- a list\n", "t.yaml:1:1: the configuration must be a mapping"),
        ("", "t.yaml: empty configuration"),
        ("services: []\n", "t.yaml:1:11: services: at least one service is needed"),
        ("services:\n  - name: x\n    protocol: push\n    listen: [\"tcp://1.2.3.4:1\"]\n    message: \"a\\nb\"\n", "t.yaml:5:14: services[0].message: one line"),
        ("services:\n  - name: x\n    protocol: push\n    listen: [\"udp://1.2.3.4:1\"]\n", "services[0].listen[0]: protocol push needs a stream address"),
        ("services:\n  - name: x\n    protocol: http\n    listen: [\"tcp://1.2.3.4:1\"]\n    routes: [{path: /}, {path: /}]\n", "t.yaml:5:32: services[0].routes[1].path: route / is given twice"),
        ("services:\n  - name: x\n    protocol: framed\n    listen: [\"tcp://1.2.3.4:1\"]\n    codec: {type: length-field, initial_bytes_to_strip: 1000, max_frame_length: 100}\n", "services[0].codec: invalid codec configuration: bytes to strip (1000) exceed the maximum frame length 100"),
        ("control:\n  socket: /tmp/c.sock\nservices:\n  - name: x\n    protocol: echo\n    listen: [\"unix:///tmp/c.sock\"]\n", "services[0].listen[0]: unix:///tmp/c.sock is the control socket"),
    ])
    func brokenConfigurationsAreLocated(_ text: String, _ expected: String) {
        do {
            _ = try ConfigLoader.parse(text, file: "t.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func garbageNeverCrashesTheLoader() {
        var x: UInt64 = 0x2545F4914F6CDD1D
        let pieces = ["services:", "\n", "  - ", "name: ", "protocol: echo", "listen: [", "\"tcp://1.2.3.4:5\"", "]", "{", "}", ":", "-", " ",
                      "workers: ", "auto", "7", "&a", "*a", "!!binary", "\"", "'", "#", "\t", "\u{0}", "é", "control:", "socket: /x"]
        for _ in 0..<3000 {
            var text = ""
            for _ in 0..<Int(x % 20) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                text += pieces[Int(x % UInt64(pieces.count))]
            }
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            _ = try? ConfigLoader.parse(text, file: "fuzz.yaml")
        }
    }

    @Test func shippedDefaultConfigIsValidAndMatchesTheBuiltIn() throws {
        let here = String(#filePath)
        let root = String(here[..<here.lastIndex(of: "/")!]) + "/../.."
        let shipped = try ConfigLoader.load(path: root + "/etc/gnetd.yaml")
        let builtIn = try ConfigLoader.parse(try #require(DaemonIdentity.gnetd.builtInConfig), file: "<built-in>")
        #expect(shipped.services.map { [$0.name, $0.kind] + $0.listen } == builtIn.services.map { [$0.name, $0.kind] + $0.listen })
        #expect((shipped.services[0].settings as? EchoSettings)?.write == nil && (builtIn.services[0].settings as? EchoSettings)?.write == nil)
        #expect(shipped.workers == builtIn.workers && shipped.drainTimeout == builtIn.drainTimeout
                && shipped.workerStallTimeout == builtIn.workerStallTimeout && shipped.control == builtIn.control)
    }

    @Test func checkFlagAndBadFlags() throws {
        let bin = ProcFS.executableDirectory() + "/gnetd"
        let here = String(#filePath)
        let root = String(here[..<here.lastIndex(of: "/")!]) + "/../.."
        let ok = try ChildProcess([bin, "--check", "--config", root + "/etc/gnetd.yaml"])
        #expect(ok.readAll(timeout: 30).contains("is valid"))
        #expect(ok.wait(timeout: 30) == 0)
        for args in [["--config"], ["--bogus"], ["--config", "/nonexistent/gnetd.yaml", "--check"], ["extra"], ["--worker"]] {
            let p = try ChildProcess([bin] + args, discardStderr: true)
            #expect(p.wait(timeout: 30) == 2, "\(args)")
        }
    }
}
