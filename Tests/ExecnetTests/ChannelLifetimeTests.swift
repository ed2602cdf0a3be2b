// A channel that has ended lets go of its subscribers: a receive queue's subscription captures
// the channel (to pair items with it), so keeping the registration after the end would keep the
// channel alive forever through itself.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct ChannelLifetimeTests {
    @Test func anEndedChannelWithAReceiveQueueIsFreed() async throws {
        weak var weakChannel: Channel?
        weak var weakQueue: ReceiveQueue?
        do {
            let channel = Channel(id: 1)
            weakChannel = channel
            let queue = try MultiChannel([channel]).makeReceiveQueue(endmarker: "end")
            weakQueue = queue
            channel.core.markPeerEnded(nil)
            #expect(try await queue.get(timeout: .seconds(5)).1 == "end")
            // Still a callback channel after the end: receive is refused, as before.
            await expectInvalidState { try await channel.receive(timeout: .milliseconds(10)) }
        }
        #expect(weakChannel == nil)
        #expect(weakQueue == nil)
    }

    @Test func anEndedChannelWithACallbackIsFreed() async throws {
        weak var weakChannel: Channel?
        do {
            let channel = Channel(id: 3)
            weakChannel = channel
            try channel.setCallback { [channel] _ in _ = channel.id }
            channel.core.markPeerEnded(nil)
            try await channel.waitClose(timeout: .seconds(5))
        }
        // The callback thread lets go of the channel when its endmarker step returns, just after
        // it has woken `waitClose`.
        let deadline = ContinuousClock.now.advanced(by: .seconds(2))
        while weakChannel != nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(weakChannel == nil)
    }
}

private func expectInvalidState(_ body: () async throws -> Value) async {
    do {
        _ = try await body()
        Issue.record("expected invalidState")
    } catch let error as ExecnetError {
        #expect(error.code == .invalidState)
    } catch {
        Issue.record("expected invalidState, got \(error)")
    }
}

/// A frame for a channel the client no longer knows, after its peer ended (a task's last item
/// arriving after the worker's BYE), and a channel opened after the end: both end at once, and
/// neither may take the registry's lock twice (it trapped the client's I/O thread).
@Suite struct ChannelAfterPeerEndTests {
    @Test func aChannelMadeAfterThePeerEndedEndsWithoutDeadlock() async throws {
        let connection = PeerConnection(gatewayID: "gw-test", side: .client, transport: DetachedTransport(),
                                        logger: PeerConnection.detached.logger)
        connection.peerEnded(nil)
        let arrived = connection.channel(forID: 7)
        let opened = connection.newChannel()
        for channel in [arrived, opened] {
            #expect(channel.isClosed)
            await expectEndOfChannel { try await channel.receive(timeout: .seconds(5)) }
        }
    }
}

private func expectEndOfChannel(_ body: () async throws -> Value) async {
    do {
        _ = try await body()
        Issue.record("expected the end of the channel")
    } catch let error as ExecnetError {
        #expect(error.code == .endOfChannel, "\(error)")
    } catch {
        Issue.record("unexpected \(error)")
    }
}
