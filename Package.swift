// swift-tools-version: 6.0
import PackageDescription

// Layers, bottom up (each only calls down):
//   CShim (C: what Swift cannot call) → CryoLinux (syscall wrappers, the monotonic clock, Trace) · CSeccomp (libseccomp)
//   CryoLog (swift-log's handler and bootstrap for cryod, cryo-monitor and cryo-runtime: levels, text or JSON lines)
//   CryoOCI (spec models) · CRIURPC (generated protobuf)
//   CRIUImages (generated protobuf: CRIU's image files) → CryoCheckpointInspect (reads a checkpoint's images: tree, files, sockets, memory)
//   CArchive (libarchive) → CryoImages (image models, digests, safe tar extraction, image store) → CryoArchive (checkpoint archives)
//   CryoNetwork (cryo networks, CNI plugins, /etc/hosts & co.)
//   CryoMigration (cryod-to-cryod wire: frames, tar streams, CRIU's page stream, the commit gate)
//   CryoRegistry (registry client: references, auth, manifests, verified blob downloads, pulls into CryoImages' store)
//   CryoHTTP (HTTP/1.1 over unix sockets and TLS-secured TCP, on SwiftNIO; for the daemon's Docker API)
//   CryoTLS (mutual TLS on NIOSSL: the CA and `cryo tls`, identities, the server's TLS hook, client streams)
//   CryoCRIU (criu swrk client) → CryoRuntime (containers, cgroups, seccomp, C/R) → cryo-runtime (CLI)
//   CryoMonitor (what cryod and the monitor share, the restore plan among it) → cryo-monitor (one per container; also the init)
//   CryoEngine (containers, images, networks, checkpoints, confinement, recovery)
//     → CryoAPI (the Docker Engine API) → cryod (the daemon)
//   CryoClient (blocking HTTP/1.1 client over a unix socket or TCP+TLS via CryoTLS) → cryo (the docker-style CLI)
//   CryoFuzz (fuzz targets over CryoHTTP, CryoImages, CryoMigration's frames and CryoEngine's create path) → cryo-fuzz (libFuzzer entry / replay)
let package = Package(
    name: "cryo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cryo-runtime", targets: ["cryo-runtime"]),
        .executable(name: "cryo-monitor", targets: ["cryo-monitor"]),
        .executable(name: "cryod", targets: ["cryod"]),
        .executable(name: "cryo", targets: ["cryo"]),
        .executable(name: "cryo-fuzz", targets: ["cryo-fuzz"]),
        .executable(name: "cryo-init", targets: ["cryo-init"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .target(name: "CShim"),
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        .target(name: "CryoLinux", dependencies: ["CShim"]),
        .target(name: "CryoLog", dependencies: ["CryoLinux", .product(name: "Logging", package: "swift-log")]),
        .target(name: "CryoOCI"),
        .systemLibrary(name: "CArchive", providers: [.apt(["libarchive-dev"])]),
        .target(
            name: "CryoImages",
            dependencies: ["CryoLinux", "CArchive", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Checkpoint archives in podman's export layout: writer, strict reader with digests and limits, the dumps' models.
        .target(
            name: "CryoArchive",
            dependencies: ["CArchive", "CryoImages", "CryoLinux", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "CRIURPC",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(name: "CryoCRIU", dependencies: ["CryoLinux", "CRIURPC"]),
        // CRIU's image messages (generated from Debian's python3-pycriu descriptors by scripts/generate-protos.sh; committed).
        .target(
            name: "CRIUImages",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // `cryo checkpoint inspect`: CRIU's image framing, pagemap/pages, and the inspection model. No CRIU needed.
        .target(
            name: "CryoCheckpointInspect",
            dependencies: ["CRIUImages", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(name: "CryoRuntime", dependencies: ["CryoLinux", "CryoOCI", "CryoCRIU", "CSeccomp", "CryoLog"]),
        .target(
            name: "CryoHTTP",
            dependencies: [
                "CryoLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(name: "cryo-runtime", dependencies: ["CryoRuntime", "CryoLog"]),
        .target(name: "CryoMonitor", dependencies: ["CryoRuntime"]),
        // `--init`: a C PID 1 bind-mounted into containers whose rootfs may have no libc, so a
        // static executable (-static-executable: swiftc links every executable, C ones too).
        .executableTarget(name: "cryo-init", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .executableTarget(name: "cryo-monitor", dependencies: ["CryoMonitor", "CryoRuntime", "CryoLinux", "CryoLog", "CShim", "CryoCheckpointInspect"]),
        .target(
            name: "CryoEngine",
            dependencies: [
                "CryoArchive", "CryoCheckpointInspect", "CryoImages", "CryoRuntime", "CryoMonitor", "CryoOCI", "CryoLinux", "CryoLog", "CryoNetwork", "CryoMigration", "CryoTLS", "CShim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(name: "CryoNetwork", dependencies: ["CryoLinux"]),
        .target(
            name: "CryoMigration",
            dependencies: ["CryoCRIU", "CryoHTTP", "CryoLinux", "CryoTLS", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .target(
            name: "CryoTLS",
            dependencies: [
                "CryoLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Registries (Docker Registry v2 / OCI distribution): references, auth challenges and
        // tokens, manifests and indexes, blob downloads verified by digest, pulls into the image store.
        .target(
            name: "CryoRegistry",
            dependencies: [
                "CryoArchive", "CryoImages", "CryoLinux",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "CryoAPI", dependencies: ["CryoRegistry", "CryoArchive", "CryoCheckpointInspect", "CryoEngine", "CryoHTTP", "CryoMigration", "CryoMonitor", "CryoImages", "CryoLinux", "CryoNetwork", "CryoTLS"]),
        .executableTarget(
            name: "cryod",
            dependencies: [
                "CryoAPI", "CryoEngine", "CryoHTTP", "CryoLinux", "CryoLog", "CryoMigration", "CryoRegistry", "CryoTLS",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The `cryo` CLI: a blocking HTTP client (CryoClient: unix sockets directly, TCP with
        // mutual TLS through CryoTLS's blocking wrapper) and the docker-style commands on top of it.
        .target(name: "CryoClient", dependencies: ["CryoTLS"]),
        .executableTarget(
            name: "cryo",
            dependencies: ["CryoArchive", "CryoCheckpointInspect", "CryoClient", "CryoLinux", "CryoTLS",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fuzz targets (libFuzzer through scripts/fuzz.sh; replayed by CryoFuzzTests).
        .target(name: "CryoFuzz", dependencies: ["CryoHTTP", "CryoImages", "CryoEngine", "CryoLinux", "CryoMigration"]),
        .executableTarget(name: "cryo-fuzz", dependencies: ["CryoFuzz", "CShim"]),
        // Helpers every test target shares (temp dirs, requirement checks, processes, fixtures);
        // a regular target that only test targets depend on.
        .target(name: "CryoTestSupport", path: "Tests/CryoTestSupport"),
        .testTarget(name: "CryoFuzzTests", dependencies: ["CryoTestSupport", "CryoFuzz"], exclude: ["Corpus"]),
        .testTarget(name: "CryoClientTests", dependencies: ["CryoTestSupport", "CryoClient", "cryo", "CryoTLS"]),
        // The runc-style flag parser lives in the cryo-runtime executable; tests import it with @testable.
        .testTarget(name: "CryoRuntimeCLITests", dependencies: ["cryo-runtime"]),
        .testTarget(name: "CryoUnitTests", dependencies: ["CryoTestSupport", "CryoOCI", "CryoRuntime", "CryoLinux"]),
        .testTarget(name: "CryoLogTests", dependencies: ["CryoLog", "CryoLinux", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CryoImageTests", dependencies: ["CryoTestSupport", "CryoImages", "CryoLinux", "CArchive"]),
        .testTarget(name: "CryoArchiveTests", dependencies: ["CryoArchive", "CArchive", "CryoImages", "CryoLinux"]),
        .testTarget(name: "CryoRegistryTests", dependencies: ["CryoRegistry", "CryoImages"]),
        .testTarget(name: "CryoCheckpointInspectTests", dependencies: ["CryoCheckpointInspect", "CRIUImages", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "CryoHTTPTests", dependencies: ["CryoTestSupport", "CryoHTTP"]),
        .testTarget(name: "CryoMigrationTests", dependencies: ["CryoTestSupport", "CryoMigration", "CryoHTTP", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "CryoTLSTests", dependencies: ["CryoTestSupport", "CryoTLS", "CryoHTTP",
                                                         .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "CryoEngineTests", dependencies: ["CryoTestSupport", "CryoEngine", "CryoAPI", "CryoMonitor", "CryoImages", "CryoNetwork", "CryoOCI",
                                                      "CryoArchive", "CryoHTTP", "CryoLog", "CryoMigration", "CryoTLS"]),
        .testTarget(name: "CryoNetworkTests", dependencies: ["CryoTestSupport", "CryoNetwork", "CryoLinux"]),
        .testTarget(name: "CryoIntegrationTests", dependencies: ["CryoTestSupport", "CryoOCI", "CryoLinux", "CryoRuntime"]),
    ],
    swiftLanguageModes: [.v6]
)

// scripts/test.sh builds with CRYO_WARNINGS_AS_ERRORS=1: a warning in cryo's own Swift targets
// (never in a dependency's) fails that build.
if Context.environment["CRYO_WARNINGS_AS_ERRORS"] == "1" {
    for target in package.targets where target.type != .system {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-warnings-as-errors"])]
    }
}
