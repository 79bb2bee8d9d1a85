#if canImport(Glibc)
import Glibc
#endif
import GnetDaemon
import GnetProcess
import Testing

/// The configuration's YAML layer (libyaml's events, composed by the daemon): what it refuses
/// and where, how scalars read, and garbage that must never crash it and always be located.
@Suite struct YAMLLoaderTests {
    let valid = """
    workers: 2
    drain_timeout: 5s
    control:
      socket: /run/gnet/t.sock
      mode: "0660"
    services:
      - name: echo
        protocol: echo
        listen: ["tcp://127.0.0.1:9000", "unix:///run/gnet/echo.sock"]
        max_connections: 100
      - name: web
        protocol: http
        listen: ["tcp://127.0.0.1:8080"]
        routes:
          - {path: /, body: "hello", status: 200}
          - path: /health
            body: ok

    """

    func error(_ text: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(text, file: "t.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func theValidConfigurationLoads() throws {
        let c = try ConfigLoader.parse(valid, file: "t.yaml")
        #expect(c.services.map(\.name) == ["echo", "web"] && c.workers == .fixed(2))
    }

    @Test(arguments: [
        // Aliases are refused where they stand; an anchor alone is fine.
        ("x_anchor: &a 1\nworkers: *a\n", "t.yaml:2:10: workers: YAML: aliases (*a) are not supported"),
        ("workers: 2\nworkers: 3\n", "t.yaml:2:1: workers: key given twice"),
        ("control:\n  mode: \"0660\"\n  mode: \"0600\"\n", "t.yaml:3:3: control.mode: key given twice"),
        ("workers: 2\n---\nworkers: 3\n", "t.yaml:2:1: YAML: a second document"),
        ("? [a, b]\n: 1\n", "t.yaml:1:3: YAML: a key must be a plain string"),
        ("services: [\n", "t.yaml:2:1: YAML: did not find expected node content (while parsing a flow node that starts at"),
        ("workers: 2\n  bad: indent\n", "t.yaml:2:6: YAML: mapping values are not allowed in this context"),
        ("workers: \"2\n", "t.yaml:2:1: YAML: found unexpected end of stream (while scanning a quoted scalar that starts at 1:10)"),
        ("workers: 2\u{1}\n", "t.yaml:1:11: YAML: control characters are not allowed"),
        ("workers: \"3\"\n", "t.yaml:1:10: workers: workers must be auto or 1 to 1024, not \"3\""),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n    max_connections: \"10\"\n", "t.yaml:5:22: services[0].max_connections: expected a whole number"),
        ("services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n    max_connections: 1:30\n", "services[0].max_connections: expected a whole number"),
    ])
    func refusalsAreLocated(_ text: String, _ expected: String) {
        guard let e = error(text) else { Issue.record("accepted: \(text)"); return }
        #expect(e.description.contains(expected), "\(e.description)")
    }

    @Test func anchorsWithoutAliasesAndScalarForms() throws {
        let base = "services:\n  - name: x\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n    max_connections: "
        for (text, n) in [("&m 7", 7), ("0x10", 16), ("0o17", 15), ("010", 8), ("1_000", 1000), ("+5", 5), ("!!int 12", 12)] {
            #expect(try ConfigLoader.parse(base + text + "\n", file: "t.yaml").services[0].maxConnections == n, "\(text)")
        }
        for text in ["~", "null", ""] {
            #expect(try ConfigLoader.parse(base + text + "\n", file: "t.yaml").services[0].maxConnections == nil, "\(text)")
        }
        for text in ["'7'", "seven", "1.5", "[7]", "99999999999999999999"] {
            #expect(error(base + text + "\n")?.line == 5, "\(text)")
        }
        // Any scalar is a string: a plain number too, and quoted null is the text "null".
        let named = try ConfigLoader.parse("services:\n  - name: 42\n    protocol: echo\n    listen: [\"tcp://1.2.3.4:1\"]\n", file: "t.yaml")
        #expect(named.services[0].name == "42")
    }

    @Test func nestingIsBoundedAndLocated() {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let deep = "services: " + String(repeating: open, count: 64) + String(repeating: close, count: 64) + "\n"
            guard let e = error(deep) else { Issue.record("accepted"); continue }
            #expect(e.message.contains("nested deeper than 64 levels") && e.line == 1, "\(e)")
            let fine = "services: " + String(repeating: open, count: 63) + String(repeating: close, count: 63) + "\n"
            #expect(error(fine).map { !$0.message.contains("nested") } ?? true, "63 levels below the root are allowed")
            // Hostile: 1 MiB of openers, unterminated, refused quickly at level 65.
            let huge = error("services: " + String(repeating: open, count: 1 << 20))
            #expect(huge?.message.contains("nested deeper than 64 levels") == true && huge?.line == 1, "\(String(describing: huge))")
        }
        let blocks = (0..<70).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        #expect(error(blocks)?.message.contains("nested deeper than 64 levels") == true)
    }

    /// Every truncation of a valid configuration, random bytes, and random mutations of it:
    /// never a crash, and every refusal names a line and column (only a document with no
    /// content at all, "empty configuration", has none).
    @Test func garbageNeverCrashesAndIsAlwaysLocated() {
        func check(_ text: String) {
            guard let e = error(text) else { return }
            #expect(e.line != nil && e.column != nil || e.message.hasPrefix("empty configuration"), "\(text.debugDescription): \(e)")
        }
        let bytes = Array(valid.utf8)
        for n in 0...bytes.count { check(String(decoding: bytes[..<n], as: UTF8.self)) }
        var x: UInt64 = 0xD1B54A32D192ED03
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        for _ in 0..<2000 { check(String(decoding: (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }, as: UTF8.self)) }
        for _ in 0..<2000 {
            var b = bytes
            for _ in 0..<Int(next() % 3 + 1) {
                let i = Int(next() % UInt64(b.count))
                let junk: [UInt8] = [0, 9, 10, 0x22, 0x27, 0x26, 0x2A, 0x21, 0x3A, 0x2D, 0x5B, 0x7B, 0x23, 0x7C, 0x3E, 0xC3, 0xFF]
                b[i] = junk[Int(next() % UInt64(junk.count))]
            }
            check(String(decoding: b, as: UTF8.self))
        }
    }

    /// libyaml's parser and the text's copy are freed on every path: thousands of loads, good
    /// and refused, leave the resident size where it was.
    @Test func parsingDoesNotLeak() {
        func residentKiB() -> Int {
            let fields = (ProcFS.readFile("/proc/self/statm") ?? "").split(separator: " ").compactMap { Int($0) }
            return fields.count > 1 ? fields[1] * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024 : 0
        }
        let texts = [valid, "services: [\n", "x: &a 1\ny: *a\n", "services: " + String(repeating: "[", count: 100), valid + "---\n" + valid]
        for t in texts { _ = error(t) }
        let before = residentKiB()
        for i in 0..<5000 { _ = error(texts[i % texts.count]) }
        let grown = residentKiB() - before
        #expect(grown < 16 * 1024, "resident size grew by \(grown) KiB over 5000 loads")
    }
}
