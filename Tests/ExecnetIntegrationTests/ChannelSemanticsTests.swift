// Channel semantics against real worker processes: the seed's callback example, close and error
// order, callbacks and endmarkers, channels over channels.

import Execnet
@testable import ExecnetCore
import Synchronization
import Testing

extension ProcessTests {
    @Suite struct ChannelSemanticsTests {
        @Test(arguments: GatewayKind.allCases) func seedExample3CallbackListIs42RightAfterWaitClose(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("receive-send42")
                let received = Mutex<[Value]>([])
                try channel.setCallback { item in received.withLock { $0.append(item) } }
                try await channel.send(1)
                try await channel.waitClose(timeout: .seconds(10))
                #expect(received.withLock { $0 } == [42])
            }
        }

        @Test(arguments: GatewayKind.allCases) func taskThatSendsThenThrowsGivesItemThenRemoteErrorOnceThenEOF(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("send-then-throw")
                #expect(try await channel.receive(timeout: .seconds(10)) == 42)
                do {
                    _ = try await channel.receive(timeout: .seconds(10))
                    Issue.record("expected a RemoteError")
                } catch let error as RemoteError {
                    #expect(error.text.contains("boom after 42"))
                    #expect(error.taskName == "send-then-throw")
                    #expect(error.gatewayID == group[0].id)
                }
                await expectExecnetError(.endOfChannel) { try await channel.receive(timeout: .seconds(5)) }
                await expectExecnetError(.endOfChannel) { try await channel.receive(timeout: .seconds(5)) }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aTaskMayNotCloseItsOwnChannel(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("close-own")
                #expect(try await channel.receive(timeout: .seconds(10)) == "refused")
            }
        }

        @Test(arguments: GatewayKind.allCases) func localCloseWithErrorReachesTheTaskAsRemoteError(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let side = group[0].newChannel()
                let channel = try group[0].remoteExec("report-end", .channel(side))
                try await channel.send(1)
                try channel.close(error: "stop now")
                let report = try await side.receive(timeout: .seconds(10))
                #expect(report == .tuple(["remote", "stop now"]))
            }
        }

        @Test(arguments: GatewayKind.allCases) func aThrowingCallbackClosesItsChannelWithAnErrorForThePeer(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                struct Refused: Error, CustomStringConvertible { var description: String { "refused by callback" } }
                let side = group[0].newChannel()
                let channel = try group[0].remoteExec("send-then-report", .channel(side))
                try channel.setCallback { _ in throw Refused() }
                try await channel.waitClose(timeout: .seconds(10))
                let report = try await side.receive(timeout: .seconds(10))
                guard case .tuple(let parts) = report, parts.count == 2, case .string(let text) = parts[1] else {
                    Issue.record("unexpected report \(report)")
                    return
                }
                #expect(parts[0] == "remote")
                #expect(text.contains("refused by callback"))
            }
        }

        @Test(arguments: GatewayKind.allCases) func itemsSentBeforeACloseStayReceivable(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("send", 1, 2, 3)
                try await channel.waitClose(timeout: .seconds(10))
                #expect(channel.isClosed)
                var items: [Value] = []
                for try await item in channel { items.append(item) }
                #expect(items == [1, 2, 3])
            }
        }

        @Test(arguments: GatewayKind.allCases) func setCallbackReplaysQueuedItemsThenRefusesReceive(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("send", 1, 2)
                try await channel.waitClose(timeout: .seconds(10))
                let received = Mutex<[Value]>([])
                try channel.setCallback({ item in received.withLock { $0.append(item) } }, endmarker: 99)
                try await channel.waitClose(timeout: .seconds(10))
                #expect(received.withLock { $0 } == [1, 2, 99])
                await expectExecnetError(.invalidState) { try await channel.receive(timeout: .seconds(1)) }
            }
        }

        @Test(arguments: GatewayKind.allCases) func endmarkerArrivesExactlyOnceAndNilDiffersFromNone(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let withNil = try group[0].remoteExec("send", 7)
                let withNone = try group[0].remoteExec("send", 7)
                let nilItems = Mutex<[Value]>([])
                let noneItems = Mutex<[Value]>([])
                try withNil.setCallback({ item in nilItems.withLock { $0.append(item) } }, endmarker: nil)
                try withNone.setCallback { item in noneItems.withLock { $0.append(item) } }
                try await withNil.waitClose(timeout: .seconds(10))
                try await withNone.waitClose(timeout: .seconds(10))
                // A second close of an ended channel delivers nothing more. (Checking that nothing
                // comes needs a delay: a deliberate listening window, not a synchronisation.)
                try withNil.close()
                try await Task.sleep(for: .milliseconds(50))
                #expect(nilItems.withLock { $0 } == [7, .none])
                #expect(noneItems.withLock { $0 } == [7])
            }
        }

        @Test(arguments: GatewayKind.allCases) func aChannelSentOverAChannelAndBackIsTheSameObject(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let carrier = try group[0].remoteExec("return-channel")
                let passenger = group[0].newChannel()
                try await carrier.send(.channel(passenger))
                let returned = try await carrier.receive(timeout: .seconds(10))
                guard case .channel(let back) = returned else {
                    Issue.record("expected a channel, got \(returned)")
                    return
                }
                #expect(back === passenger)
            }
        }

        @Test(arguments: GatewayKind.allCases) func cancelledReceiveThrowsCancellationAndConsumesNothing(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("echo")
                let waiting = Task { try await channel.receive() }
                #expect(try await eventually { channel.core.state.withLock { $0.receivers.count } == 1 })
                waiting.cancel()
                await #expect(throws: CancellationError.self) { try await waiting.value }
                try await channel.send("after")
                #expect(try await channel.receive(timeout: .seconds(10)) == "after")
                try channel.close()
            }
        }

        @Test(arguments: GatewayKind.allCases) func receiveTimesOutWithATimeoutError(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("echo")
                await expectExecnetError(.timeout) { try await channel.receive(timeout: .milliseconds(100)) }
                try await channel.send(5)
                #expect(try await channel.receive(timeout: .seconds(10)) == 5)
                try channel.close()
            }
        }
    }
}
