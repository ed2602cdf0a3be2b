// The cap on peer channels no value has named, on the worker's side of a connection (toward a
// hostile client): the worker process exits on a violation; here the handler records it instead.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Logging
import Synchronization
import Testing

@Suite struct UnnamedPeerChannelCapTests {
    @Test func aClientFloodingFreshChannelIDsEndsTheWorkersConnectionOnce() throws {
        let transport = RecordingTransport()
        let connection = PeerConnection(gatewayID: "gw0", side: .worker, transport: transport,
                                        logger: Logger(label: "test"), maxUnnamedChannels: 8)
        let violations = Mutex<[String]>([])
        connection.onProtocolViolation { reason in violations.withLock { $0.append(reason) } }
        var item: [UInt8] = []
        try Serializer.encodeInternal(.int(1), into: &item)
        // Odd ids: channels the client "opened".
        for index in 0..<1_000 {
            connection.dispatch(WireMessage(channelID: Int32(1 + 2 * index), type: .data, payload: item))
            connection.dispatch(WireMessage(channelID: Int32(2_001 + 2 * index), type: .close, payload: []))
        }
        #expect(violations.withLock { $0 } == ["protocol violation: too many unnamed channels (over 8)"])
        #expect(connection.unnamedPeerChannelCount == 8)
        #expect(connection.openChannelCount == 8)
        #expect(connection.hasPeerEnded)
    }

    /// The client's hub learns of a violation from `dispatch` itself (it then kills the worker):
    /// no handler, no call back from the connection. Reported once, on the frame that broke the cap.
    @Test func dispatchTellsTheCallerOfAViolationOnce() throws {
        let connection = PeerConnection(gatewayID: "gw0", side: .client, transport: RecordingTransport(),
                                        logger: Logger(label: "test"), maxUnnamedChannels: 4)
        var item: [UInt8] = []
        try Serializer.encodeInternal(.int(1), into: &item)
        // Even ids: channels the worker "opened".
        var reports: [Int] = []
        for index in 0..<20 where connection.dispatch(WireMessage(channelID: Int32(2 + 2 * index), type: .data, payload: item)) {
            reports.append(index)
        }
        #expect(reports == [4])
        #expect(connection.hasPeerEnded)
    }

    @Test func namingAChannelGivesBackItsCountAndBytes() throws {
        let connection = PeerConnection(gatewayID: "gw0", side: .worker, transport: RecordingTransport(),
                                        logger: Logger(label: "test"), maxUnnamedChannels: 2, maxUnnamedBytes: 1_000)
        let violations = Mutex(0)
        connection.onProtocolViolation { _ in violations.withLock { $0 += 1 } }
        let item = [UInt8](repeating: 0, count: 400)
        // Two channels of 400 bytes each, named in turn, then more: never past the cap at once.
        for round in 0..<10 {
            let first = Int32(1 + 4 * round)
            connection.dispatch(WireMessage(channelID: first, type: .data, payload: item))
            connection.dispatch(WireMessage(channelID: first + 2, type: .data, payload: item))
            #expect(connection.unnamedPeerChannelCount == 2)
            var named: [UInt8] = []
            try Serializer.encodeInternal(.list([.channel(Channel(id: first)), .channel(Channel(id: first + 2))]), into: &named)
            _ = try connection.decode(named)
            #expect(connection.unnamedPeerChannelCount == 0)
        }
        #expect(violations.withLock { $0 } == 0)
        #expect(!connection.hasPeerEnded)
        // A third channel at once, or one more byte than the cap, is a violation.
        connection.dispatch(WireMessage(channelID: 101, type: .data, payload: item))
        connection.dispatch(WireMessage(channelID: 101, type: .data, payload: item))
        connection.dispatch(WireMessage(channelID: 103, type: .data, payload: item))
        #expect(violations.withLock { $0 } == 1)
        #expect(connection.hasPeerEnded)
    }
}

/// A transport that keeps what is sent.
private final class RecordingTransport: FrameTransport {
    let sent = Mutex<[WireMessage]>([])
    func submit(_ message: WireMessage) -> Bool {
        sent.withLock { $0.append(message) }
        return true
    }
    var isOnIOThread: Bool { false }
    var timers: TimerQueue? { nil }
}
