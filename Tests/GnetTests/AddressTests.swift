#if canImport(Glibc)
import Glibc
#endif
import Gnet
import Testing

@Suite struct AddressTests {
    @Test func parsesEveryNetwork() throws {
        for n in NetworkAddress.Network.allCases where n != .unix {
            let a = try NetworkAddress(parsing: "\(n.rawValue)://127.0.0.1:9000")
            #expect(a.network == n && a.host == "127.0.0.1" && a.port == 9000)
        }
        let u = try NetworkAddress(parsing: "unix:///tmp/x.sock")
        #expect(u.network == .unix && u.path == "/tmp/x.sock")
        let v6 = try NetworkAddress(parsing: "tcp6://[::1]:80")
        #expect(v6.host == "::1" && v6.port == 80)
        #expect(try NetworkAddress(parsing: "tcp://:0").host == "")
        #expect(try NetworkAddress(parsing: "TCP://localhost:1").network == .tcp)
    }

    @Test func rejectsWhatGnetRejects() {
        #expect(throws: GnetError.unsupportedProtocol("tulip://howdy")) { try NetworkAddress(parsing: "tulip://howdy") }
        for bad in ["howdy", "tcp://", "tcp://localhost:8080/foo", "unix://", "tcp://1.2.3.4", "tcp://1.2.3.4:", "tcp://1.2.3.4:65536",
                    "tcp://1.2.3.4:-1", "tcp://::1:80", "tcp://[::1:80", "udp://a b:1", "tcp://1.2.3.4:80x", "://x:1", "tcp//x:1"] {
            #expect(throws: GnetError.invalidAddress(bad)) { try NetworkAddress(parsing: bad) }
        }
    }

    @Test func resolvesFamilies() throws {
        #expect(try NetworkAddress(parsing: "tcp4://localhost:5").resolve().description == "127.0.0.1:5")
        #expect(try NetworkAddress(parsing: "tcp6://localhost:5").resolve().description == "[::1]:5")
        #expect(throws: GnetError.self) { try NetworkAddress(parsing: "tcp4://[::1]:5").resolve() }
        #expect(throws: GnetError.self) { try NetworkAddress(parsing: "tcp6://127.0.0.1:5").resolve() }
        #expect(try NetworkAddress(parsing: "unix:///tmp/a").resolve().unixPath == "/tmp/a")
        let long = "unix:///" + String(repeating: "x", count: 200)
        #expect(throws: GnetError.invalidAddress(long)) { try NetworkAddress(parsing: long) }
    }

    @Test func garbageNeverCrashesTheParser() {
        var seed: UInt64 = 0x9E3779B97F4A7C15
        let alphabet = Array("tcpudnix46:/[]. 0123456789abcdef%@?#\u{0}\u{7f}é".unicodeScalars)
        for _ in 0..<5000 {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            let len = Int(seed % 24)
            var s = ""
            var x = seed
            for _ in 0..<len { s.unicodeScalars.append(alphabet[Int(x % UInt64(alphabet.count))]); x = x / 7 &+ 13 }
            if let a = try? NetworkAddress(parsing: s) {
                // Whatever parses must print back to something that parses to the same thing.
                #expect((try? NetworkAddress(parsing: a.description)) == a)
            }
        }
    }

    /// A Unix path: a stale socket file is taken over, a live one is EADDRINUSE, a regular file
    /// is EEXIST and stays.
    @Test func unixPathsAreNeverStolenOrDeleted() throws {
        let path = tempSocketPath("bind")
        let address = try NetworkAddress(parsing: "unix://" + path)
        let live = try Listener.bind(address)
        #expect(throws: GnetError.system(SystemError("bind", errno: EADDRINUSE))) { try Listener.bind(address) }
        live.close()
        // A socket file whose owner is gone (closed without unlinking) is stale: bound again.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = try address.resolve().withUnsafeSockaddr { Glibc.bind(fd, $0, $1) }
        Glibc.close(fd)
        let again = try Listener.bind(address)
        again.close()
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = write(file, "keep", 4)
        Glibc.close(file)
        defer { unlink(path) }
        #expect(throws: GnetError.system(SystemError("bind", errno: EEXIST))) { try Listener.bind(address) }
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_size == 4, "the file is still there")
    }
}
