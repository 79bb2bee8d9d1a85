// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gnet",
    products: [
        .library(name: "Gnet", targets: ["Gnet"]),
        .executable(name: "gnet-bench", targets: ["gnet-bench"]),
        .executable(name: "gnet-c-echo", targets: ["gnet-c-echo"]),
    ],
    targets: [
        // Thin C shim over the Linux APIs Swift cannot reach comfortably (epoll, eventfd, CMSG, atomics).
        .target(name: "CGnetLinux", cSettings: [.define("_GNU_SOURCE")]),
        // The framework: Glibc + CGnetLinux + the toolchain's Synchronization module, nothing else.
        .target(
            name: "Gnet",
            dependencies: ["CGnetLinux"]),
        // Spawning and watching child processes (posix_spawn with a clean signal state, /proc).
        .target(name: "GnetProcess", dependencies: ["Gnet", "CGnetLinux"]),
        // Counts heap allocations per thread by interposing malloc; linked only into tests and the bench.
        .target(name: "CMallocCounter", cSettings: [.define("_GNU_SOURCE")]),
        // Plain C loops the benchmark compares against.
        .target(name: "CBenchKernels"),
        // Echo load generator, the Gnet echo server used for measurements, and the comparison driver.
        .executableTarget(name: "gnet-bench", dependencies: ["Gnet", "GnetProcess", "CGnetLinux", "CMallocCounter", "CBenchKernels"]),
        // libFuzzer target for the frame decoders (build with --sanitize=fuzzer; see README).
        .executableTarget(name: "gnet-fuzz-codecs", dependencies: ["Gnet"]),
        // The physical reference: a minimal plain-C epoll echo server.
        .executableTarget(name: "gnet-c-echo"),
        .testTarget(name: "GnetTests", dependencies: ["Gnet", "GnetProcess", "CGnetLinux", "CMallocCounter"]),
    ],
    swiftLanguageModes: [.v6]
)
