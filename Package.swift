// swift-tools-version:6.2
//
// Tools 6.2: the channel API is `nonisolated(nonsending)` (SE-0461), which needs a Swift 6.2 compiler.
//
// swift-execnet: execnet's gateways, channels and groups for Swift, over ZeroMQ.
// Modules are cut by role (docs/ARCHITECTURE.md): C shims and a thin ZeroMQ layer at the bottom;
// ExecnetValue (the value format, no libzmq); ExecnetCore (wire codec, I/O thread, connections,
// channels, process supervision); thin role libraries on top: ExecnetClient, ExecnetWorkerRuntime,
// ExecnetBrokerServer, ExecnetHostAgent; the umbrella `Execnet` re-exports the value, core, client
// and worker API; then the executables. No library module imports Foundation (the worker must
// start lean), and the stock worker links only ExecnetValue, ExecnetCore and ExecnetWorkerRuntime.

// Platforms: built and tested on Linux (Debian 12, x86_64). macOS 15 is declared so the package
// resolves there, but it is neither built nor tested on macOS (process supervision uses pidfds).

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "swift-execnet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Execnet", targets: ["Execnet"]),
        .library(name: "ExecnetValue", targets: ["ExecnetValue"]),
        .library(name: "ExecnetBrokerServer", targets: ["ExecnetBrokerServer"]),
        .library(name: "ExecnetHostAgent", targets: ["ExecnetHostAgent"]),
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
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
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
        // The value format: Value, the serializer, the Codable bridge. No libzmq: usable alone.
        .target(
            name: "ExecnetValue",
            dependencies: [
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // Wire codec, the I/O thread, connections, channels, process supervision, CURVE keys.
        .target(
            name: "ExecnetCore",
            dependencies: [
                "ExecnetValue",
                "ZeroMQ",
                "CExecnetShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client: Group, Gateway, MultiChannel, the hub, typed calls and map.
        .target(
            name: "ExecnetClient",
            dependencies: [
                "ExecnetValue",
                "ExecnetCore",
                "ZeroMQ",
                "CExecnetShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The worker side: the task registry, the stock tasks, the worker's main loop.
        .target(
            name: "ExecnetWorkerRuntime",
            dependencies: [
                "ExecnetValue",
                "ExecnetCore",
                "ZeroMQ",
                "CExecnetShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The broker server (execnet-broker's engine), with its routing table and ZAP handler.
        .target(
            name: "ExecnetBrokerServer",
            dependencies: [
                "ExecnetValue",
                "ExecnetCore",
                "ZeroMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP side of execnet-broker and execnet-agent: /metrics (Prometheus), /healthz, /readyz
        // (Hummingbird), and JSON log lines. Only the executables link it.
        .target(
            name: "ExecnetObservability",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The host agent (execnet-agent's engine).
        .target(
            name: "ExecnetHostAgent",
            dependencies: [
                "ExecnetValue",
                "ExecnetCore",
                "ZeroMQ",
                "CExecnetShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The umbrella a user program imports: re-exports the value, core, client and worker API.
        .target(
            name: "Execnet",
            dependencies: ["ExecnetValue", "ExecnetCore", "ExecnetClient", "ExecnetWorkerRuntime"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetWorker",
            dependencies: ["ExecnetValue", "ExecnetCore", "ExecnetWorkerRuntime"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetBroker",
            dependencies: [
                "ExecnetValue",
                "ExecnetCore",
                "ExecnetBrokerServer",
                "ExecnetObservability",
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
                "ExecnetValue",
                "ExecnetCore",
                "ExecnetHostAgent",
                "ExecnetObservability",
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
        // Test helpers both test targets share (not a product).
        .target(
            name: "ExecnetTestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
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
            dependencies: ["ExecnetValue", "ExecnetCore", "ExecnetWorkerRuntime"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ExecnetBenchmarks",
            dependencies: [
                "Execnet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                // `runtime --metrics`: the backend execnet-broker and execnet-agent bootstrap.
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
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
            dependencies: [
                "Execnet", "ExecnetValue", "ExecnetCore", "ExecnetClient", "ExecnetWorkerRuntime", "ExecnetBrokerServer",
                "ZeroMQ", "ExecnetTestSupport",
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecnetIntegrationTests",
            dependencies: [
                "Execnet", "ExecnetValue", "ExecnetCore", "ExecnetClient", "ExecnetWorkerRuntime",
                "ExecnetBrokerServer", "ExecnetHostAgent", "ZeroMQ",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "ExecnetTestWorker", "ExecnetWorker", "ExecnetTestClient", "TaskServer",
                "ExecnetBroker", "ExecnetAgent", "ExecnetExamples", "TaskServerMap", "ExecnetTestTasks",
                "ExecnetTestSupport",
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
        dependencies: ["ExecnetValue", "ExecnetCore"],
        path: "Fuzz/ExecnetFuzz",
        swiftSettings: swiftSettings
    ))
    package.products.append(.executable(name: "execnet-fuzz", targets: ["ExecnetFuzz"]))
}
