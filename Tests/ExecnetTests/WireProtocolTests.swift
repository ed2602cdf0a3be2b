// The frame codec: frames round-trip, and every malformed shape is a typed protocol error.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct WireProtocolTests {
    @Test func framesRoundTrip() throws {
        for id: Int32 in [0, 1, 2, 255, 256, Int32.max, -1, Int32.min] {
            let message = WireMessage(channelID: id, type: .data, payload: [1, 2, 3])
            let parsed = try WireMessage.parse(message.frames)
            #expect(parsed.channelID == id && parsed.type == .data && parsed.payload == [1, 2, 3])
        }
        #expect(WireMessage.channelFrame(258) == [0, 0, 1, 2])
    }

    @Test(arguments: [
        [[UInt8]](),
        [[0, 0, 0, 1]],
        [[0, 0, 0, 1], [3]],
        [[0, 0, 1], [3], []],
        [[0, 0, 0, 0, 1], [3], []],
        [[0, 0, 0, 1], [], []],
        [[0, 0, 0, 1], [3, 3], []],
        [[0, 0, 0, 1], [0], []],
        [[0, 0, 0, 1], [200], []],
        [[0, 0, 0, 1], [3], [], []],
    ])
    func malformedFramesAreProtocolViolations(_ frames: [[UInt8]]) {
        #expect(throws: ExecnetError(.protocolViolation, "")) { try WireMessage.parse(frames) }
    }

    @Test func everyMessageTypeHasAName() {
        for raw in UInt8(1)...10 {
            let type = MessageType(rawValue: raw)
            #expect(type != nil)
            #expect(type.map { "\($0)".uppercased() == "\($0)" } == true)
        }
    }

    @Test func hexDumpIsShortAndSaysTheLength() {
        #expect(hexDump([0xde, 0xad]) == "dead")
        #expect(hexDump([]) == "<empty>")
        #expect(hexDump([UInt8](repeating: 0, count: 40), limit: 2) == "0000…(40 bytes)")
    }
}
