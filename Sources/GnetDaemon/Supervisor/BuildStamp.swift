/// Which build a process runs: the version, git revision and build ID of its binary. Workers
/// send theirs on their status channel before "ready" (`build version=… revision=… id=…`), so
/// `gnetctl status` shows, across an upgrade, which workers run the old build and which the new.
struct BuildStamp: Equatable, Sendable {
    let version: String
    let revision: String
    /// The GNU build ID as hex, or `unknown`.
    let buildID: String

    /// This process's own build.
    static func current(_ identity: DaemonIdentity) -> BuildStamp {
        BuildStamp(version: identity.version, revision: BuildInfo.revision, buildID: BuildInfo.buildID ?? "unknown")
    }

    init(version: String, revision: String, buildID: String) {
        self.version = version; self.revision = revision; self.buildID = buildID
    }

    /// The status line a worker sends: `build version=0.1.0 revision=1a2b3c id=011e15…`.
    var statusLine: String { "build version=\(version) revision=\(revision) id=\(buildID)" }

    /// The stamp in a status line; nil when the line is not one.
    init?(statusLine line: String) {
        guard line.hasPrefix("build ") else { return nil }
        var fields: [Substring: String] = [:]
        for part in line.dropFirst(6).split(separator: " ") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            fields[part[..<eq]] = String(part[part.index(after: eq)...])
        }
        guard let version = fields["version"], let revision = fields["revision"], let id = fields["id"] else { return nil }
        self.init(version: version, revision: revision, buildID: id)
    }

    /// The stamp as `status` reports it: `version`, `revision`, `build`.
    var json: [String: JSONValue] { ["version": .string(version), "revision": .string(revision), "build": .string(buildID)] }

    /// The stamp from `status`'s members (or a handoff's); nil when one is missing.
    init?(json: JSONValue?) {
        guard let version = json?["version"]?.string, let revision = json?["revision"]?.string, let id = json?["build"]?.string else { return nil }
        self.init(version: version, revision: revision, buildID: id)
    }
}
