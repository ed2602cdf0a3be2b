// The frame codec: every message type of both protocols round-trips (as frames and through real
// sockets), and every malformed shape is its own typed error, never a crash.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing
import ZeroMQ

@Suite struct WireProtocolTests {
    /// Every type of both protocols, each on a channel id its kind allows.
    static let everyMessage: [WireMessage] =
        GatewayMessageType.allCases.map { WireMessage(channelID: $0.isChannelMessage ? 7 : 0, type: .gateway($0), payload: [1, 2, 3]) }
        + BrokerMessageType.allCases.map { WireMessage(channelID: 0, type: .broker($0), payload: [0x51]) }

    @Test func framesRoundTrip() throws {
        for id: Int32 in [1, 2, 255, 256, Int32.max] {
            let message = WireMessage(channelID: id, type: .data, payload: [1, 2, 3])
            let parsed = try WireMessage.parse(message.frames)
            #expect(parsed.channelID == id && parsed.type == .data && parsed.payload == [1, 2, 3])
        }
        #expect(WireMessage.channelFrame(258) == [0, 0, 1, 2])
        #expect(WireMessage.channelFrame(-2) == [0xff, 0xff, 0xff, 0xfe])
    }

    @Test func everyMessageTypeRoundTripsAsFrames() throws {
        for message in Self.everyMessage {
            let frames = message.frames
            #expect(frames[1] == [message.type.rawValue])
            let parsed = try WireMessage.parse(frames)
            #expect(parsed.channelID == message.channelID && parsed.type == message.type && parsed.payload == message.payload)
        }
    }

    @Test func everyMessageTypeRoundTripsThroughSockets() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close(); router.close() }
        try dealer.setRoutingID([0x77])
        _ = try router.bind("inproc://wire-round-trip")
        try dealer.connect("inproc://wire-round-trip")
        // Broker-style address frames ride along as the envelope; a large payload goes without a copy.
        let large = WireMessage(channelID: 9, type: .data, payload: [UInt8](repeating: 5, count: zeroCopyPayloadSize + 1))
        for message in Self.everyMessage + [large] {
            #expect(try dealer.sendWire(message, routingID: nil, dontWait: true))
            let received = try #require(try Self.receive(router, routed: true))
            #expect(received.routingID == [0x77])
            let parsed = try received.get()
            #expect(parsed.channelID == message.channelID && parsed.type == message.type && parsed.payload == message.payload)
            #expect(try router.sendWire(message, routingID: [0x77], dontWait: true))
            let back = try #require(try Self.receive(dealer, routed: false)).get()
            #expect(back.type == message.type && back.payload == message.payload)
        }
        // The envelope frame comes between the routing id and the message.
        #expect(try router.sendWire(Self.everyMessage[0], routingID: [0x77], envelope: [0xaa, 0xbb], dontWait: true))
        let frames = try #require(try Self.receiveFrames(dealer))
        #expect(frames == [[0xaa, 0xbb]] + Self.everyMessage[0].frames)
    }

    static let malformed: [(frames: [[UInt8]], error: WireFormatError)] = [
        ([], .frameCount(0)),
        ([[0, 0, 0, 1]], .frameCount(1)),
        ([[0, 0, 0, 1], [3]], .frameCount(2)),
        ([[0, 0, 0, 1], [3], [], []], .frameCount(4)),
        ([[0, 0, 0, 1], [3], [], [], [9]], .frameCount(5)),
        ([[0, 0, 1], [3], []], .channelFrameSize(3)),
        ([[], [3], []], .channelFrameSize(0)),
        ([[0, 0, 0, 0, 1], [3], []], .channelFrameSize(5)),
        ([[0, 0, 0, 1], [], []], .typeFrameSize(0)),
        ([[0, 0, 0, 1], [3, 3], []], .typeFrameSize(2)),
        ([[0, 0, 0, 1], [0], []], .unknownType(0)),
        ([[0, 0, 0, 1], [24], []], .unknownType(24)),
        ([[0, 0, 0, 1], [200], []], .unknownType(200)),
        ([[0, 0, 0, 0], [3], [0x51]], .badChannelID(0, .data)),
        ([[0xff, 0xff, 0xff, 0xff], [6], []], .badChannelID(-1, .credit)),
        ([[0x80, 0, 0, 0], [2], []], .badChannelID(Int32.min, .exec)),
        // The count is judged first, then the channel frame, then the type frame.
        ([[0, 0, 1], [200]], .frameCount(2)),
        ([[0, 0, 1], [200], []], .channelFrameSize(3)),
    ]

    @Test(arguments: 0..<malformed.count)
    func malformedFramesAreTypedErrors(_ index: Int) {
        let (frames, expected) = Self.malformed[index]
        #expect(throws: expected) { try WireMessage.parse(frames) }
        #expect(expected.protocolViolation.code == .protocolViolation)
    }

    @Test func malformedFramesFromASocketGiveTheSameErrors() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close(); router.close() }
        _ = try router.bind("inproc://wire-malformed")
        try dealer.connect("inproc://wire-malformed")
        // An empty message cannot be sent; the rest go as they are.
        for (frames, expected) in Self.malformed where !frames.isEmpty {
            #expect(try dealer.send(frames, dontWait: true))
            let received = try #require(try Self.receive(router, routed: true))
            #expect(received.message == nil && received.problem == expected)
            #expect(throws: expected) { try received.get() }
        }
    }

    @Test func gatewayLevelMessagesAndBrokerMessagesMayUseAnyChannel() throws {
        // Channel 0 is the gateway's; the broker echoes a status request's channel.
        #expect(try WireMessage.parse(WireMessage(channelID: 0, type: .terminate, payload: []).frames).type == .terminate)
        #expect(try WireMessage.parse(WireMessage(channelID: 1, type: .brokerStatus, payload: []).frames).channelID == 1)
    }

    @Test func theTwoProtocolsShareNoByteAndEveryTypeHasAName() {
        let gateway = Set(GatewayMessageType.allCases.map(\.rawValue))
        let broker = Set(BrokerMessageType.allCases.map(\.rawValue))
        #expect(gateway == Set(1...10) && broker == Set(11...23))
        for raw in UInt8(0)...255 {
            let type = MessageType(rawValue: raw)
            #expect((type != nil) == (1...23).contains(raw))
            if let type {
                #expect(type.rawValue == raw)
                #expect("\(type)".uppercased() == "\(type)" && !"\(type)".isEmpty)
            }
        }
        #expect(MessageType(rawValue: 3) == .gateway(.data) && MessageType(rawValue: 11) == .broker(.heartbeat))
    }

    @Test func hexDumpIsShortAndSaysTheLength() {
        #expect(hexDump([0xde, 0xad]) == "dead")
        #expect(hexDump([]) == "<empty>")
        #expect(hexDump([UInt8](repeating: 0, count: 40), limit: 2) == "0000…(40 bytes)")
    }

    // MARK: - Helpers

    /// The next message on an inproc socket, which libzmq has delivered by the time the send
    /// returned: a bounded number of non-blocking tries, no sleep.
    static func receive(_ socket: ZMQSocket, routed: Bool) throws -> ReceivedWireMessage? {
        for _ in 0..<10_000 {
            if let message = try socket.receiveWire(routed: routed) { return message }
        }
        return nil
    }

    static func receiveFrames(_ socket: ZMQSocket) throws -> [[UInt8]]? {
        for _ in 0..<10_000 {
            if let frames = try socket.receive(dontWait: true) { return frames }
        }
        return nil
    }
}
