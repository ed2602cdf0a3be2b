// The client's metrics, recorded through swift-metrics into MetricsTestKit's TestMetrics (a real
// in-process backend, bootstrapped once for this test process): what a real gateway run records.
// Other tests run at the same time in this process, so every assertion is on a lower bound of the
// growth across the test, never an exact total.

import CoreMetrics
import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import MetricsTestKit
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The test process's metrics backend, bootstrapped on first use (once per process).
let testMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()

/// Totals of the client's counters, published first.
private func clientTotals() async -> [String: Int64] {
    _ = testMetrics
    await publishClientMetrics()
    var totals: [String: Int64] = [:]
    for label in [MetricNames.gatewaysStarted, MetricNames.messagesSent, MetricNames.messagesReceived,
                  MetricNames.bytesSent, MetricNames.bytesReceived, MetricNames.creditStalls,
                  MetricNames.creditWaitNanoseconds] {
        totals[label] = testMetrics.counterTotal(label: label)
    }
    for (cause, label) in [("exited", "deaths.exited"), ("SIGKILL", "deaths.SIGKILL")] {
        totals[label] = testMetrics.counterTotal(label: MetricNames.gatewayDeaths, dimensions: [("cause", cause)])
    }
    for outcome in ["exited", "killed"] {
        totals["terminations.\(outcome)"] = testMetrics.counterTotal(
            label: MetricNames.terminations, dimensions: [("outcome", outcome)])
    }
    return totals
}

private func growth(_ before: [String: Int64], _ after: [String: Int64], _ key: String) -> Int64 {
    (after[key] ?? 0) - (before[key] ?? 0)
}

extension ProcessTests {
    @Suite struct MetricsTests {
        @Test(arguments: GatewayKind.allCases) func aGatewayRunIsCountedInTheMetrics(kind: GatewayKind) async throws {
            let before = await clientTotals()
            let payload = Value.bytes(Array(repeating: 7, count: 100))
            try await withTestGroup(1, kind: kind) { group in
                let echo = try group[0].remoteExec("echo")
                for _ in 0..<20 { try await echo.send(payload) }
                for _ in 0..<20 { #expect(try await echo.receive(timeout: .seconds(10)) == payload) }
                await publishClientMetrics()
                #expect((try testMetrics.expectGauge(MetricNames.gatewaysAlive).lastValue ?? 0) >= 1)
                #expect((try testMetrics.expectGauge(MetricNames.channelsOpen).lastValue ?? 0) >= 1)
            }
            let after = await clientTotals()
            #expect(growth(before, after, MetricNames.gatewaysStarted) >= 1)
            // 20 items plus the task's start message each way at least; payload bytes, not frames.
            #expect(growth(before, after, MetricNames.messagesSent) >= 21)
            #expect(growth(before, after, MetricNames.messagesReceived) >= 20)
            #expect(growth(before, after, MetricNames.bytesSent) >= 20 * 100)
            #expect(growth(before, after, MetricNames.bytesReceived) >= 20 * 100)
            #expect(growth(before, after, "terminations.exited") >= 1)
            if kind == .popen { #expect(growth(before, after, "deaths.exited") >= 1) }
        }

        @Test func aKilledWorkerIsCountedUnderItsSignal() async throws {
            let before = await clientTotals()
            try await withTestGroup(1) { group in
                let channel = try group[0].remoteExec("pid-then-sleep")
                _ = try await channel.receive(timeout: .seconds(10))
                group[0].kill(signal: SIGKILL)
                #expect(await group[0].join(timeout: .seconds(10)) == .signaled(SIGKILL))
            }
            let after = await clientTotals()
            #expect(growth(before, after, "deaths.SIGKILL") >= 1)
        }

        @Test func aSenderBlockedOnCreditIsCounted() async throws {
            let before = await clientTotals()
            try await withTestGroup(1) { group in
                // The task never reads: the 1025th item waits for credit that never comes.
                let channel = try group[0].remoteExec("pid-then-sleep")
                _ = try await channel.receive(timeout: .seconds(10))
                let sent = Atomic<Int>(0)
                let sender = Task {
                    for index in 0..<(FlowWindow.messages + 1) {
                        try await channel.send(.int(Int64(index)))
                        sent.add(1, ordering: .relaxed)
                    }
                }
                // Bounded: the window's worth goes at once, then the sender waits.
                let deadline = ContinuousClock.now.advanced(by: .seconds(20))
                while sent.load(ordering: .relaxed) < FlowWindow.messages && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(sent.load(ordering: .relaxed) == FlowWindow.messages)
                sender.cancel()
                await #expect(throws: CancellationError.self) { try await sender.value }
            }
            let after = await clientTotals()
            #expect(growth(before, after, MetricNames.creditStalls) >= 1)
            #expect(growth(before, after, MetricNames.creditWaitNanoseconds) > 0)
        }
    }
}
