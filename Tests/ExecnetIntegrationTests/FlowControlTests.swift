// Flow control against a real worker: a fast sender never loses a message and the receiver's
// buffer stays within the credit window.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

extension ProcessTests {
    @Suite struct FlowControlTests {
        @Test(arguments: GatewayKind.allCases) func aMillionMessagesToASlowerReceiverArriveInOrderWithinTheWindow(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let count = 1_000_000
                let channel = try group[0].remoteExec("count", .int(Int64(count)))
                var maxBuffered = 0
                for expected in 0..<count {
                    if expected % 10_000 == 0 {
                        // Let the sender run ahead as far as it can, then look at the buffer: a deliberate
                        // pause, not a synchronisation (the bound asserted holds however far it got).
                        try await Task.sleep(for: .milliseconds(2))
                        maxBuffered = max(maxBuffered, channel.core.state.withLock { $0.items.count })
                    }
                    let item = try await channel.receive(timeout: .seconds(30))
                    if item != .int(Int64(expected)) {
                        Issue.record("item \(expected) was \(item)")
                        return
                    }
                }
                await expectExecnetError(.endOfChannel) { try await channel.receive(timeout: .seconds(10)) }
                #expect(maxBuffered <= FlowWindow.messages)
                #expect(maxBuffered > 0)
            }
        }

        /// Issue 16: the client's I/O thread reads at most ``Hub/drainBytes`` of payload per loop
        /// turn, so a consumer on that thread takes each large item before the next is copied out
        /// of libzmq, instead of finding a window of copies queued (peak memory while streaming).
        @Test(arguments: GatewayKind.allCases) func largeItemsDoNotQueueUpForAConsumerOnTheIOThread(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let count = 48
                let size = 1 << 20
                let channel = try group[0].remoteExec("send-bytes", .int(Int64(count)), .int(Int64(size)))
                let maxQueued = try await withExecnetIOThread {
                    var maxQueued = 0
                    for index in 0..<count {
                        guard case .bytes(let bytes) = try await channel.receive(timeout: .seconds(60)), bytes.count == size else {
                            Issue.record("item \(index) is not \(size) bytes")
                            break
                        }
                        maxQueued = max(maxQueued, channel.core.state.withLock { $0.items.count })
                    }
                    return maxQueued
                }
                #expect(maxQueued <= 1)
                await expectExecnetError(.endOfChannel) { try await channel.receive(timeout: .seconds(10)) }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aFastClientSenderIsHeldByTheWorkersWindow(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let count = 200_000
                let channel = try group[0].remoteExec("consume", .int(Int64(count)))
                for index in 0..<count { try await channel.send(.int(Int64(index))) }
                #expect(try await channel.receive(timeout: .seconds(60)) == .int(Int64(count)))
            }
        }
    }
}
