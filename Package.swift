// swift-tools-version:6.2
//
// Tools 6.2: the channel API is `nonisolated(nonsending)` (SE-0461), which needs a Swift 6.2 compiler.
//
// swift-execnet: execnet's gateways, channels and groups for Swift, over ZeroMQ.
// Modules are cut by layer: C shims at the bottom, a thin ZeroMQ layer, the Execnet core on top,
// then the executables. Neither ZeroMQ nor Execnet imports Foundation (the worker must start lean).

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "swift-execnet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Execnet", targets: ["Execnet"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .executable(name: "execnet-worker", targets: ["ExecnetWorker"]),
        .executable(name: "execnet-broker", targets: ["ExecnetBroker"]),
        .executable(name: "execnet-agent", targets: ["ExecnetAgent"]),
        .executable(name: "execnet-bench", targets: ["ExecnetBenchmarks"]),
        .executable(name: "taskserver", targets: ["TaskServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // libzmq, found through pkg-config.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]
        ),
        // Small POSIX helpers Swift cannot call directly (variadic syscalls, macros).
        .target(name: "CExecnetShims"),
        .target(
            name: "ZeroMQ",
            dependencies: ["CZeroMQ"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Execnet",
            dependencies: [
                "ZeroMQ",
                "CExecnetShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetWorker",
            dependencies: ["Execnet"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetBroker",
            dependencies: [
                "Execnet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetAgent",
            dependencies: [
                "Execnet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The typed tasks of the test worker, declared once for it and the tests (not a product).
        .target(
            name: "ExecnetTestTasks",
            dependencies: ["Execnet"],
            swiftSettings: swiftSettings
        ),
        // A worker with the tasks the integration tests drive (not a product).
        .executableTarget(
            name: "ExecnetTestWorker",
            dependencies: ["Execnet", "ExecnetTestTasks"],
            swiftSettings: swiftSettings
        ),
        // A client that is its own worker, for tests that kill a client (not a product).
        .executableTarget(
            name: "ExecnetTestClient",
            dependencies: ["Execnet"],
            swiftSettings: swiftSettings
        ),
        // execnet's documented examples, ported line by line (not a product; a test runs it).
        .executableTarget(
            name: "ExecnetExamples",
            dependencies: ["Execnet"],
            swiftSettings: swiftSettings
        ),
        // The command-line options the two taskserver examples share.
        .target(
            name: "TaskServerOptions",
            dependencies: [
                "Execnet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The seed's taskserver example.
        .executableTarget(
            name: "TaskServer",
            dependencies: [
                "Execnet",
                "TaskServerOptions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The taskserver example done with group.map (issue 13).
        .executableTarget(
            name: "TaskServerMap",
            dependencies: [
                "Execnet",
                "TaskServerOptions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The worker the runtime benchmark starts (not a product): a lean worker like execnet-worker.
        .executableTarget(
            name: "ExecnetBenchWorker",
            dependencies: ["Execnet"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetBenchmarks",
            dependencies: [
                "Execnet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ZeroMQTests",
            dependencies: ["ZeroMQ"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecnetTests",
            dependencies: ["Execnet", "ZeroMQ"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecnetIntegrationTests",
            dependencies: [
                "Execnet", "ZeroMQ", "ExecnetTestWorker", "ExecnetWorker", "ExecnetTestClient", "TaskServer",
                "ExecnetBroker", "ExecnetAgent", "ExecnetExamples", "TaskServerMap", "ExecnetTestTasks",
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// The libFuzzer target of scripts/fuzz.sh, only when EXECNET_FUZZ=1 (it needs -sanitize=fuzzer,
// which a normal build must not).
if Context.environment["EXECNET_FUZZ"] == "1" {
    package.targets.append(.executableTarget(
        name: "ExecnetFuzz",
        dependencies: ["Execnet"],
        path: "Fuzz/ExecnetFuzz",
        swiftSettings: swiftSettings
    ))
    package.products.append(.executable(name: "execnet-fuzz", targets: ["ExecnetFuzz"]))
}
