// Tasks and client code that run on the execnet I/O thread (withExecnetIOThread on the client,
// TaskRegistry.registerOnIOThread in the worker): they really run there, keep per-channel order
// with sends from other threads, obey the credit window both ways, time out, cancel, and may not
// use the blocking API.

@testable import Execnet
import Testing

/// The blocking API from synchronous code, as a task on the I/O thread might (mis)use it.
private func blockingReceiveError(_ channel: Channel) -> ExecnetError? {
    do {
        _ = try channel.receiveBlocking(timeout: .milliseconds(10))
        return nil
    } catch {
        return error as? ExecnetError
    }
}

/// `waitCloseBlocking` and `sendBlocking` from synchronous code.
private func otherBlockingErrors(_ channel: Channel) -> [ExecnetError.Code?] {
    var codes: [ExecnetError.Code?] = []
    do { try channel.waitCloseBlocking(timeout: .milliseconds(10)); codes.append(nil) } catch {
        codes.append((error as? ExecnetError)?.code)
    }
    do { try channel.sendBlocking(1); codes.append(nil) } catch { codes.append((error as? ExecnetError)?.code) }
    return codes
}

extension ProcessTests {
    @Suite struct IOThreadTests {
        @Test(arguments: GatewayKind.allCases) func clientCodeRunsOnTheIOThreadAndKeepsOrderWithThePool(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("echo")
                // Sent from the pool, then from the I/O thread: the echo returns them in order.
                for index in 0..<500 { try await channel.send(.int(Int64(index))) }
                let onIOThread = try await withExecnetIOThread {
                    let here = try ClientRuntime.current().io.isCurrent
                    for index in 500..<1_000 { try await channel.send(.int(Int64(index))) }
                    for expected in 0..<1_000 {
                        let item = try await channel.receive(timeout: .seconds(10))
                        if item != .int(Int64(expected)) {
                            Issue.record("item \(expected) was \(item)")
                            break
                        }
                    }
                    return here
                }
                #expect(onIOThread)
                #expect(try !ClientRuntime.current().io.isCurrent)
                try channel.close()
            }
        }

        @Test(arguments: GatewayKind.allCases) func timeoutCancellationAndQueuesWorkOnTheIOThread(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let channel = try group[0].remoteExec("echo")
                try await withExecnetIOThread {
                    await expectExecnetError(.timeout) { try await channel.receive(timeout: .milliseconds(100)) }
                    // Structured child tasks inherit the preference.
                    async let childHere = try ClientRuntime.current().io.isCurrent
                    #expect(try await childHere)
                    // A cancelled receive consumes nothing.
                    let waiting = Task { try await channel.receive() }
                    try await Task.sleep(for: .milliseconds(50))
                    waiting.cancel()
                    await #expect(throws: CancellationError.self) { try await waiting.value }
                    try await channel.send("after")
                    #expect(try await channel.receive(timeout: .seconds(10)) == "after")
                    // A receive queue over both gateways, read on the I/O thread.
                    let channels = try group.remoteExec("send", 7)
                    let queue = try channels.makeReceiveQueue(endmarker: "end")
                    var items: [Value] = []
                    for _ in 0..<4 { items.append(try await queue.get(timeout: .seconds(10)).1) }
                    #expect(items.filter { $0 == 7 }.count == 2 && items.filter { $0 == "end" }.count == 2)
                }
                try channel.close()
            }
        }

        @Test(arguments: GatewayKind.allCases) func aWorkerTaskOnTheIOThreadObeysTheWindowBothWays(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let count = 200_000
                let sender = try group[0].remoteExec("count-io", .int(Int64(count)))
                var maxBuffered = 0
                for expected in 0..<count {
                    if expected % 20_000 == 0 {
                        try await Task.sleep(for: .milliseconds(2))
                        maxBuffered = max(maxBuffered, sender.core.state.withLock { $0.items.count })
                    }
                    let item = try await sender.receive(timeout: .seconds(30))
                    if item != .int(Int64(expected)) {
                        Issue.record("item \(expected) was \(item)")
                        return
                    }
                }
                #expect(maxBuffered <= FlowWindow.messages && maxBuffered > 0)
                let consumer = try group[0].remoteExec("consume-io", .int(Int64(count)))
                try await withExecnetIOThread {
                    for index in 0..<count { try await consumer.send(.int(Int64(index))) }
                }
                #expect(try await consumer.receive(timeout: .seconds(60)) == .int(Int64(count)))
            }
        }

        @Test(arguments: GatewayKind.allCases) func theBlockingAPIIsRefusedOnTheIOThread(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let task = try group[0].remoteExec("blocking-on-io")
                let reported = try await task.receive(timeout: .seconds(10))
                guard case .string(let text) = reported else {
                    Issue.record("expected a string, got \(reported)")
                    return
                }
                #expect(text.contains("I/O thread"))
                let channel = try group[0].remoteExec("echo")
                let error = try await withExecnetIOThread { blockingReceiveError(channel) }
                #expect(error?.code == .invalidState)
                let others = try await withExecnetIOThread { otherBlockingErrors(channel) }
                #expect(others == [.invalidState, .invalidState])
                // Off the I/O thread the same call only times out.
                #expect(blockingReceiveError(channel)?.code == .timeout)
                try channel.close()
            }
        }
    }
}
