#if canImport(Glibc)
import Glibc
#endif
import GnetServices
import Testing

@Suite struct AccessLogTests {
    /// A log that cannot be opened anew (its directory is gone) says why and keeps the old file;
    /// a FIFO or a directory is refused as a log.
    @Test func reopenFailureIsReportedAndSpecialFilesAreRefused() throws {
        var template = Array("/tmp/gnet-access-XXXXXX".utf8CString)
        let dir = String(cString: try #require(mkdtemp(&template)))
        let log = try #require(AccessLog(path: dir + "/access.log"))
        #expect(log.reopen() == nil)
        unlink(dir + "/access.log")
        rmdir(dir)
        #expect(log.reopen() != nil, "a reopen that cannot create the file says so")
        #expect(mkdir(dir, 0o755) == 0 && mkfifo(dir + "/fifo", 0o644) == 0)
        defer { unlink(dir + "/fifo"); rmdir(dir) }
        #expect(AccessLog(path: dir + "/fifo") == nil, "a FIFO is never opened as a log (it would block)")
        #expect(AccessLog(path: dir) == nil)
    }

    /// Lines written through `record` read back from the real file in Common Log Format.
    @Test func formatsCommonLogFormatLines() throws {
        var template = Array("/tmp/gnet-access-XXXXXX".utf8CString)
        let dir = try #require(mkdtemp(&template))
        let path = String(cString: dir) + "/access.log"
        defer { unlink(path); rmdir(dir) }
        let log = try #require(AccessLog(path: path))
        let longTarget = "/" + String(repeating: "a", count: 20_000)
        let requests: [(String, Int, Int)] = [
            ("GET /q?x=\"1\" HTTP/1.1\r\nHost: a\r\n\r\n", 200, 13),
            ("HEAD / HTTP/1.0\r\n\r\n", 404, 0),
            ("POST /up HTTP/1.1\r\nHost: a\r\n\r\n", 201, 1_234_567),
            ("GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n", 414, 7),
        ]
        for (text, status, bytes) in requests {
            let head = Array(text.utf8)
            var layout = HTTPHeadLayout()
            var limits = HTTPLimits()
            limits.maxRequestLine = 32 * 1024
            limits.maxHead = 64 * 1024
            head.withUnsafeBytes { raw in
                _ = HTTPHeadParser.scan(raw, limits: limits, into: &layout)
                log.record(client: Array("10.0.0.7".utf8), request: raw, layout, status: status, bytes: bytes)
            }
        }
        log.record(client: Array("::1".utf8), request: UnsafeRawBufferPointer(start: nil, count: 0), nil, status: 400, bytes: 0)
        log.flush()
        let file = try #require(fopen(path, "r"))
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        try #require(lines.count == 5)
        let stamp = #/ - - \[\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d \+0000\] /#
        for line in lines { #expect(line.firstMatch(of: stamp) != nil, "\(line)") }
        #expect(lines[0].hasPrefix("10.0.0.7 - - [") && lines[0].hasSuffix("\"GET /q?x='1' HTTP/1.1\" 200 13\n"))
        #expect(lines[1].hasSuffix("\"HEAD / HTTP/1.0\" 404 0\n"))
        #expect(lines[2].hasSuffix("\"POST /up HTTP/1.1\" 201 1234567\n"))
        #expect(lines[3].hasSuffix("a HTTP/1.1\" 414 7\n") && lines[3].utf8.count < 16 * 1024 + 100, "a long target is cut")
        #expect(lines[4].hasPrefix("::1 - - [") && lines[4].hasSuffix("] \"- -\" 400 0\n"))
    }
}
