#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux

/// What the running binary was built from, for `--version` and `gnetctl status`: the source
/// revision the packaging stamped in (`unknown` for a plain `swift build`) and the linker's
/// build ID, which tells two builds apart even when they claim the same version.
public enum BuildInfo {
    /// The git revision, or `unknown`.
    public static let revision = String(cString: gnet_git_revision())

    /// The GNU build ID as hex, or nil when the binary has none.
    public static let buildID: String? = {
        var buffer = [CChar](repeating: 0, count: 129)
        guard gnet_build_id(&buffer, buffer.count) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// `gnetd 0.1.0 (revision 1a2b3c4d5e6f, build 011e15a8f4a4)`.
    public static func versionLine(_ identity: DaemonIdentity) -> String {
        "\(identity.name) \(identity.version) (revision \(revision), build \(buildID.map { String($0.prefix(12)) } ?? "unknown"))"
    }
}
