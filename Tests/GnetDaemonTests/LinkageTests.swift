import GnetProcess
import Testing

/// gnetd links no Foundation (nor FoundationEssentials, nor ICU): what it needs of libc comes
/// through Glibc, its YAML from Debian's libyaml. A Foundation import anywhere in what gnetd
/// links (GnetDaemon, GnetctlCommand, GnetServices, GnetProcess, Gnet, or a dependency) makes
/// the binary next to this test bundle need libFoundation*.so, and this test fail; the Debian
/// package's static build would then carry Foundation and its 34 MB of ICU data again.
@Suite struct LinkageTests {
    static let forbidden = ["libFoundation", "FoundationEssentials", "FoundationInternationalization", "_FoundationICU", "libicu", "libxml2", "libcurl"]

    @Test(arguments: ["gnetd", "gnetctl", "gnet-resp"])
    func noFoundationInTheDaemonsBinaries(_ name: String) throws {
        let bin = ProcFS.executableDirectory() + "/" + name
        // The dynamic section says what the binary needs, whether or not ldd can resolve it.
        let needed = try ChildProcess(["readelf", "-d", bin])
        let dynamic = needed.readAll(timeout: 60)
        #expect(needed.wait(timeout: 60) == 0, "readelf -d \(bin)")
        #expect(dynamic.contains("(NEEDED)") && dynamic.contains("libyaml"), "\(name) needs libyaml: \(dynamic)")
        let ldd = try ChildProcess(["ldd", bin])
        let libraries = ldd.readAll(timeout: 60)
        #expect(ldd.wait(timeout: 60) == 0, "ldd \(bin)")
        #expect(libraries.contains("libswiftCore"), "ldd lists the Swift runtime: \(libraries)")
        for word in Self.forbidden {
            #expect(!dynamic.contains(word) && !libraries.contains(word), "\(name) links \(word):\n\(libraries)")
        }
    }
}
