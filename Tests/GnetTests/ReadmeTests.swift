#if canImport(Glibc)
import Glibc
#endif
import Gnet
import GnetProcess
import Testing

/// The README's library example is this package's `ReadmeExample.swift`, compiled by this
/// suite, and it must keep working and keep matching the README word for word.
@Suite(.timeLimit(.minutes(1))) struct ReadmeTests {
    @Test func readmeShowsTheCompiledExample() throws {
        let here = String(#filePath)
        let dir = String(here[..<here.lastIndex(of: "/")!])
        let example = try #require(ProcFS.readFile(dir + "/ReadmeExample.swift"))
        let begin = try #require(example.firstRange(of: "// README-EXAMPLE-BEGIN\n"))
        let end = try #require(example.firstRange(of: "// README-EXAMPLE-END"))
        let snippet = String(example[begin.upperBound..<end.lowerBound])
        let readme = try #require(ProcFS.readFile(dir + "/../../README.md"))
        #expect(readme.contains("```swift\n" + snippet + "```"), "README.md must show Tests/GnetTests/ReadmeExample.swift verbatim")
    }

    @Test func readmeExampleServes() throws {
        let engine = try serveEcho(on: "tcp://127.0.0.1:0")
        defer { engine.stop(); engine.wait() }
        let s = try TestSocket(engine.addresses[0])
        try s.send("hello")
        #expect(try s.receive(exactly: 5) == Array("hello".utf8))
    }

    @Test func ciRunsTheReadmeTestCommand() throws {
        let here = String(#filePath)
        let root = String(here[..<here.lastIndex(of: "/")!]) + "/../.."
        let readme = try #require(ProcFS.readFile(root + "/README.md"))
        let ci = try #require(ProcFS.readFile(root + "/.ci/run"))
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false)
        let marker = try #require(lines.firstIndex { $0.hasPrefix("# test") })
        let command = String(lines[marker + 1])
        #expect(!command.isEmpty)
        #expect(ci.contains("# test"), ".ci/run takes the command from the README")
        #expect(lines.prefix(8).contains { $0.hasPrefix("# run") }, "the README opens with the run command")
    }
}
