// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gnet",
    products: [
        .library(name: "Gnet", targets: ["Gnet"]),
        .executable(name: "gnet-bench", targets: ["gnet-bench"]),
        .executable(name: "gnet-c-echo", targets: ["gnet-c-echo"]),
        .executable(name: "gnet-c-http", targets: ["gnet-c-http"]),
        .executable(name: "gnetd", targets: ["gnetd"]),
        .executable(name: "gnetctl", targets: ["gnetctl"]),
        .executable(name: "gnet-resp", targets: ["gnet-resp"]),
        .library(name: "GnetDaemon", targets: ["GnetDaemon"]),
    ],
    dependencies: [
        // The daemon's log lines.
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        // `swift package generate-documentation`: the Gnet DocC catalog, built by CI with
        // warnings as errors (a build-time plugin only; nothing of it is linked).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Thin C shim over the Linux APIs Swift cannot reach comfortably (epoll, eventfd, CMSG, atomics).
        .target(name: "CGnetLinux", cSettings: [.define("_GNU_SOURCE")]),
        // The framework: Glibc + CGnetLinux + the toolchain's Synchronization module, nothing else.
        .target(
            name: "Gnet",
            dependencies: ["CGnetLinux"]),
        // sd_notify and socket activation from libsystemd (Debian: libsystemd-dev).
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libyaml's parser events, for the daemon's YAML configuration with line and column (Debian: libyaml-dev).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // Protocol handlers served by gnetd, and worked examples of the library.
        .target(name: "GnetServices", dependencies: ["Gnet", "CGnetLinux"]),
        // The daemon: configuration, supervisor, workers, stats page, control protocol, systemd glue.
        .target(
            name: "GnetDaemon",
            dependencies: [
                "Gnet", "GnetServices", "GnetProcess", "CGnetLinux", "CSystemd", "CYAML",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // gnetctl's command line (read by hand: swift-argument-parser links FoundationEssentials),
        // shared by the gnetctl executable and gnetd run as `gnetctl`.
        .target(name: "GnetctlCommand", dependencies: ["GnetDaemon"]),
        .executableTarget(name: "gnetd", dependencies: ["GnetDaemon", "GnetctlCommand"]),
        .executableTarget(name: "gnetctl", dependencies: ["GnetctlCommand"]),
        // A Redis-protocol server on GnetDaemon's public API: the worked example of a daemon of one's own.
        .target(name: "GnetResp", dependencies: ["GnetDaemon", "Gnet"]),
        // Its executable: Daemon.main with the resp kind and gnetd's own.
        .executableTarget(name: "gnet-resp", dependencies: ["GnetResp", "GnetDaemon"]),
        // Spawning and watching child processes (posix_spawn with a clean signal state, /proc).
        .target(name: "GnetProcess", dependencies: ["Gnet", "CGnetLinux"]),
        // Counts heap allocations per thread by interposing malloc; linked only into tests and the bench.
        .target(name: "CMallocCounter", cSettings: [.define("_GNU_SOURCE")]),
        // Plain C loops the benchmark compares against.
        .target(name: "CBenchKernels"),
        // Echo load generator, the Gnet echo and http servers used for measurements, and the comparison driver.
        .executableTarget(
            name: "gnet-bench",
            dependencies: ["Gnet", "GnetProcess", "GnetDaemon", "GnetServices", "CGnetLinux", "CMallocCounter", "CBenchKernels"]
        ),
        // libFuzzer target for the frame decoders (build with --sanitize=fuzzer; see README).
        .executableTarget(name: "gnet-fuzz-codecs", dependencies: ["Gnet"]),
        // libFuzzer target for the HTTP request-head parser, the chunked decoder and the whole http service.
        .executableTarget(name: "gnet-fuzz-http", dependencies: ["GnetServices", "Gnet", "CGnetLinux"]),
        // The physical reference: a minimal plain-C epoll echo server.
        .executableTarget(name: "gnet-c-echo"),
        // The physical reference for HTTP: a minimal plain-C keep-alive/pipelining responder.
        .executableTarget(name: "gnet-c-http"),
        .testTarget(name: "GnetTests", dependencies: ["Gnet", "GnetProcess", "CGnetLinux", "CMallocCounter"]),
        .testTarget(name: "GnetDaemonTests", dependencies: ["GnetDaemon", "GnetServices", "GnetResp", "Gnet", "GnetProcess", "CGnetLinux", "CMallocCounter"]),
    ],
    swiftLanguageModes: [.v6]
)
