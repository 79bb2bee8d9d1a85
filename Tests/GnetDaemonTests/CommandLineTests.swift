#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gnet
import GnetProcess
import Testing

/// gnetd's and gnetctl's command lines as an operator uses them, and how workers show in `ps`.
@Suite(.serialized)
struct CommandLineTests {
    static let bin = ProcFS.executableDirectory()

    static func run(_ argv: [String], environment: [String]? = nil) throws -> (code: Int32?, out: String) {
        let p = try ChildProcess(argv, environment: environment ?? ChildProcess.inheritedEnvironment(), discardStderr: true)
        let out = p.readAll(timeout: 30)
        return (p.wait(timeout: 30), out)
    }

    @Test(.timeLimit(.minutes(1)))
    func versionHelpAndCompletionOnBoth() throws {
        for program in ["gnetd", "gnetctl"] {
            let version = try Self.run([Self.bin + "/" + program, "--version"])
            #expect(version.code == 0)
            // Name, version, revision and the build ID of this very binary.
            #expect(version.out.hasPrefix("\(program) 0.1.0 (revision "), "\(version.out)")
            let buildID = try Self.run(["sh", "-c", "readelf -n \(Self.bin)/\(program) | sed -n 's/.*Build ID: //p'"]).out
            #expect(!buildID.isEmpty && version.out.contains("build \(buildID.prefix(12)))"), "\(version.out) vs \(buildID)")
            let help = try Self.run([Self.bin + "/" + program, "--help"])
            #expect(help.code == 0 && help.out.contains("USAGE: \(program)"))
            let completion = try Self.run([Self.bin + "/" + program, "--generate-completion-script", "bash"])
            #expect(completion.code == 0)
            let dir = NSTemporaryDirectory() + "gnet-completion-\(getpid())-\(program)"
            try completion.out.write(toFile: dir, atomically: true, encoding: .utf8)
            defer { unlink(dir) }
            let loaded = try Self.run(["bash", "-c", "source \(dir) && complete -p \(program)"])
            #expect(loaded.code == 0 && loaded.out.contains(program), "\(loaded.out)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func configGivenEitherWay() throws {
        let here = String(#filePath)
        let shipped = String(here[..<here.lastIndex(of: "/")!]) + "/../../etc/gnetd.yaml"
        for args in [["--config", shipped, "--check"], ["--config=\(shipped)", "--check"], ["-c", shipped, "-t"], ["--check", "-c", shipped]] {
            let r = try Self.run([Self.bin + "/gnetd"] + args)
            #expect(r.code == 0 && r.out.contains("is valid"), "\(args)")
        }
        for args in [["--config="], ["--config"], ["-c"], ["-x"], ["--check", "extra"], ["--config", shipped, "--worker"]] {
            #expect(try Self.run([Self.bin + "/gnetd"] + args).code == 2, "\(args)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func workersAreTitledInPsAndComm() throws {
        let h = try DaemonHarness(config: """
            services:
              - name: echo
                protocol: echo
                listen: ["tcp://127.0.0.1:0"]

            """, workers: 2)
        try h.start()
        for (i, pid) in try h.workerPids().enumerated() {
            let cmdline = (ProcFS.readFile("/proc/\(pid)/cmdline") ?? "").split(separator: "\0").map(String.init)
            #expect(cmdline == ["gnetd: worker \(i) (generation 1)"], "\(cmdline)")
            let comm = (ProcFS.readFile("/proc/\(pid)/comm") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(comm == "gnetd: worker \(i)")
            let ps = try Self.run(["ps", "-o", "args=", "-p", "\(pid)"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(ps == "gnetd: worker \(i) (generation 1)")
        }
        // A reload's workers carry the new generation.
        #expect(try h.request("reload")["ok"] as? Bool == true)
        let fresh = try h.workers().filter { $0["generation"] as? Int == 2 }.compactMap { $0["pid"] as? Int }
        #expect(fresh.count == 2)
        for pid in fresh {
            #expect((ProcFS.readFile("/proc/\(pid)/cmdline") ?? "").hasSuffix("(generation 2)\0"))
        }
        // Started by hand with a worker's title but no description, it is not a worker.
        let impostor = try Self.run(["bash", "-c", "exec -a 'gnetd: worker 0 (generation 1)' \(Self.bin)/gnetd --bogus"])
        #expect(impostor.code == 2)
        #expect(h.stop() == 0)
    }
}
