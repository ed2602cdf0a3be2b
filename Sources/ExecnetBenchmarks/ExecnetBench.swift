// The `execnet-bench` command: benchmarks and cross-implementation checks of swift-execnet.
// Each subcommand lives in its own file; add new ones to `subcommands` below.

import ArgumentParser

@main
struct ExecnetBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "execnet-bench",
        abstract: "Benchmarks and cross-checks for swift-execnet.",
        subcommands: [SerializerBenchmark.self, CrossCheck.self, TypedCrossCheck.self, RuntimeBenchmark.self]
    )
}
