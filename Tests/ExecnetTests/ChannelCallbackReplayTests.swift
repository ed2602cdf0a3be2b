// setCallback on a channel that already holds items (or has ended) delivers them, and the
// endmarker, on the caller's thread before it returns, in order, as execnet does; items arriving
// afterwards go to the callback thread.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Synchronization
import Testing

@Suite struct ChannelCallbackReplayTests {
    private func payload(_ value: Value) throws -> [UInt8] {
        var buffer: [UInt8] = []
        try Serializer.encodeInternal(value, into: &buffer)
        return buffer
    }

    @Test func queuedItemsAndTheEndmarkerOfAnEndedChannelArriveBeforeSetCallbackReturns() throws {
        let channel = Channel(id: 1)
        for item: Value in [1, 2, 3] { channel.core.deliver(try payload(item)) }
        channel.core.markPeerEnded(nil)
        let received = Mutex<[Value]>([])
        try channel.setCallback({ item in received.withLock { $0.append(item) } }, endmarker: "end")
        #expect(received.withLock { $0 } == [1, 2, 3, "end"])
        #expect(channel.isClosed)
    }

    @Test func queuedItemsArriveInlineAndLaterOnesOnTheCallbackThreadInOrder() async throws {
        let channel = Channel(id: 1)
        for item: Value in [1, 2] { channel.core.deliver(try payload(item)) }
        let received = Mutex<[Value]>([])
        try channel.setCallback({ item in received.withLock { $0.append(item) } }, endmarker: "end")
        #expect(received.withLock { $0 } == [1, 2])
        channel.core.deliver(try payload(3))
        channel.core.markPeerEnded(nil)
        try await channel.waitClose(timeout: .seconds(5))
        #expect(received.withLock { $0 } == [1, 2, 3, "end"])
    }

    @Test func itemsArrivingWhileTheReplayRunsQueueBehindIt() async throws {
        let channel = Channel(id: 1)
        channel.core.deliver(try payload(1))
        let received = Mutex<[Value]>([])
        let next = try payload(2)
        try channel.setCallback({ item in
            received.withLock { $0.append(item) }
            // An item and the end arrive from the peer while the first is still being handled.
            if item == 1 {
                channel.core.deliver(next)
                channel.core.markPeerEnded(nil)
            }
        }, endmarker: "end")
        #expect(received.withLock { $0 } == [1, 2, "end"])
        try await channel.waitClose(timeout: .seconds(5))
        #expect(received.withLock { $0 } == [1, 2, "end"])
    }

    @Test func aCallbackThatThrowsDuringTheReplayStopsItAndStillGetsTheEndmarker() throws {
        struct Refused: Error {}
        let channel = Channel(id: 1)
        for item: Value in [1, 2, 3] { channel.core.deliver(try payload(item)) }
        let received = Mutex<[Value]>([])
        try channel.setCallback({ item in
            received.withLock { $0.append(item) }
            if item == 2 { throw Refused() }
        }, endmarker: "end")
        #expect(received.withLock { $0 } == [1, 2, "end"])
        #expect(channel.isClosed)
    }

    @Test func anEndedChannelWithoutItemsGetsOnlyTheEndmarker() throws {
        let channel = Channel(id: 1)
        channel.core.markPeerEnded(PeerEnd("gone", gatewayID: "gw0"))
        let received = Mutex<[Value]>([])
        try channel.setCallback({ item in received.withLock { $0.append(item) } }, endmarker: .none)
        #expect(received.withLock { $0 } == [.none])
    }
}
