// A channel still open when its user lets go of the last handle closes itself (execnet's
// `Channel.__del__`), on a connection whose transport records what it sends: one plain CLOSE,
// nothing for a channel already closed, and nothing while a callback holds the channel.

import Execnet
@testable import ExecnetCore
@testable import ExecnetValue
import Logging
import Synchronization
import Testing

@Suite struct ChannelAutoCloseTests {
    private func connection(_ side: ConnectionSide = .client) -> (PeerConnection, SentFrames) {
        let transport = SentFrames()
        return (PeerConnection(gatewayID: "gw0", side: side, transport: transport, logger: Logger(label: "test")), transport)
    }

    @Test func aDroppedOpenChannelSendsOnePlainClose() throws {
        let (connection, sent) = connection()
        var id: Int32 = 0
        do {
            let channel = connection.newChannel()
            id = channel.id
            #expect(sent.frames.isEmpty)
        }
        #expect(sent.frames == [Frame(id: id, type: .close)])
        // Registered until the peer's close arrives, then forgotten; no second close goes out.
        #expect(connection.openChannelCount == 1)
        connection.dispatch(WireMessage(channelID: id, type: .close, payload: []))
        #expect(connection.openChannelCount == 0)
        #expect(sent.frames == [Frame(id: id, type: .close)])
    }

    @Test func aDroppedChannelThatIsClosedSendsNothingMore() throws {
        let (connection, sent) = connection()
        do {
            let closed = connection.newChannel()
            try closed.close()
        }
        do {
            let endedByPeer = connection.newChannel()
            connection.dispatch(WireMessage(channelID: endedByPeer.id, type: .close, payload: []))
        }
        // Each side's close, once: the user's close of 1, the reply to the peer's close of 3.
        #expect(sent.frames == [Frame(id: 1, type: .close), Frame(id: 3, type: .close)])
    }

    @Test func aChannelWithACallbackIsHeldByItUntilItEnds() async throws {
        let (connection, sent) = connection()
        let received = Mutex<[Value]>([])
        weak var weakChannel: Channel?
        var id: Int32 = 0
        do {
            let channel = connection.newChannel()
            id = channel.id
            weakChannel = channel
            try channel.setCallback({ value in received.withLock { $0.append(value) } }, endmarker: "end")
        }
        #expect(weakChannel != nil, "the callback holds the channel")
        #expect(sent.frames.isEmpty, "no close while the callback wants items")
        var item: [UInt8] = []
        try Serializer.encodeInternal(.int(7), into: &item)
        connection.dispatch(WireMessage(channelID: id, type: .data, payload: item))
        connection.dispatch(WireMessage(channelID: id, type: .close, payload: []))
        // The callback thread delivers the item and the endmarker, then lets go of the handle.
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while weakChannel != nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(received.withLock { $0 } == [7, "end"])
        #expect(weakChannel == nil)
        #expect(sent.frames == [Frame(id: id, type: .close)], "only the reply to the peer's close")
    }

    @Test func aValueNamingAHeldChannelGivesTheSameObjectAndKeepsItOpen() throws {
        let (connection, sent) = connection()
        let channel = connection.newChannel()
        do {
            var payload: [UInt8] = []
            try Serializer.encodeInternal(.list([.channel(channel)]), into: &payload)
            let decoded = try connection.decode(payload)
            #expect(decoded[0]?.channelValue === channel)
        }
        #expect(sent.frames.isEmpty, "the decoded value's reference went; the user's holds the channel")
        #expect(channel.hasReceiver)
        withExtendedLifetime(channel) {}
    }

    @Test func aHeldChannelThePeerClosedStillResolvesToTheSameObject() throws {
        // The worker lets go of a channel of the client's that it sent back: its close may arrive
        // before the value naming the channel is decoded, and the registry forgets the channel.
        let (connection, _) = connection()
        let mine = connection.newChannel()
        var payload: [UInt8] = []
        try Serializer.encodeInternal(.channel(mine), into: &payload)
        connection.dispatch(WireMessage(channelID: mine.id, type: .close, payload: []))
        #expect(connection.openChannelCount == 0)
        #expect(try connection.decode(payload).channelValue === mine)
        #expect(connection.openChannelCount == 0)
    }

    @Test func aPeerChannelNamedInAValueAndDroppedIsClosed() throws {
        // A worker gets a channel of the client's (odd id) inside a value and lets it go.
        let (connection, sent) = connection(.worker)
        var payload: [UInt8] = []
        try Serializer.encodeInternal(.channel(Channel(id: 5)), into: &payload)
        do {
            let decoded = try connection.decode(payload)
            #expect(decoded.channelValue?.id == 5)
        }
        #expect(sent.frames == [Frame(id: 5, type: .close)])
    }
}

/// One sent frame, without its payload.
private struct Frame: Equatable, CustomStringConvertible {
    let id: Int32
    let type: MessageType
    var description: String { "\(type) \(id)" }
}

/// A transport that keeps what is sent.
private final class SentFrames: FrameTransport {
    private let sent = Mutex<[Frame]>([])
    var frames: [Frame] { sent.withLock { $0 } }
    func submit(_ message: WireMessage) -> Bool {
        sent.withLock { $0.append(Frame(id: message.channelID, type: message.type)) }
        return true
    }
    var isOnIOThread: Bool { false }
    var timers: TimerQueue? { nil }
}
