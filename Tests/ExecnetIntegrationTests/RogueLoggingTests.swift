// Rogue frames are logged at a bounded rate: the first of a kind in an interval with its details,
// the rest counted and summed up in one line at the interval's end. A raw peer's 10,000 frames to
// a real broker give a couple of lines, not 10,000.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import ExecnetTestSupport
import Logging
import Synchronization
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif


@Suite struct RogueLoggingTests {
    @Test func aFloodOfOneKindGivesOneLineAndOneSummaryPerInterval() async throws {
        let lines = LogLines()
        let rogue = RateLimitedLogger(logger: lines.logger(label: "rogue-test"), interval: .milliseconds(200), timers: nil)
        for index in 0..<10_000 { rogue.warning("dropped a test frame", "number \(index)") }
        rogue.warning("dropped another kind", "once")
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while lines.count(containing: "more in the last") == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let snapshot = lines.snapshot
        #expect(snapshot.count == 3, "\(snapshot)")
        #expect(snapshot.filter { $0.contains("number 0") }.count == 1)
        #expect(snapshot.contains { $0.contains("dropped a test frame: 9999 more") })
        #expect(snapshot.contains { $0.contains("dropped another kind: once") })
    }

    @Test func tenThousandRogueFramesToAHubGiveAFewLogLinesThatCountThemAll() async throws {
        let lines = LogLines()
        let logger = lines.logger(label: "rogue-test")
        var template = Array("/tmp/execnet-rogue-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { removeDirectory(directory) }
        let endpoint = "ipc://\(directory)/hub"
        let context = try ZMQContext()
        let hub = try IOThread(name: "execnet-io-rogue") { () -> Hub in
            let hub = Hub(endpoint: endpoint, context: context, logger: logger)
            hub.rogue = RateLimitedLogger(logger: logger, interval: .seconds(1), timers: nil)
            return hub
        }
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.setRoutingID(Array("stranger".utf8))
        try socket.connect(endpoint)
        let message = WireMessage(channelID: 1, type: .data, payload: [0x51]).frames
        for _ in 0..<10_000 { try socket.send(message) }
        // Every frame is either the shown first of an interval or counted in that interval's summary.
        func counted() -> Int {
            let kind = "dropped a message from an unknown peer: "
            return lines.snapshot.reduce(0) { total, line in
                guard line.hasPrefix(kind) else { return total }
                let words = line.dropFirst(kind.count).split(separator: " ")
                if words.count > 1, words[1] == "more", let number = Int(words[0]) { return total + number }
                return total + 1
            }
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while counted() < 10_000 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(counted() == 10_000)
        #expect(lines.count(containing: "unknown peer") <= 6, "\(lines.snapshot)")
        socket.close()
        await hub.stopAndWait()
        context.terminate()
    }

    @Test func tenThousandRogueFramesToABrokerGiveAFewLogLines() async throws {
        let lines = LogLines()
        let server = try BrokerServer(configuration: BrokerConfiguration(binds: ["tcp://127.0.0.1:*"], logger: lines.logger(label: "rogue-test")))
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.connect(try #require(server.endpoints.first))
        let garbage = [[UInt8]](repeating: [1, 2, 3], count: 9)
        for _ in 0..<10_000 { try socket.send(garbage) }
        // A stranger's heartbeat is answered with UNKNOWN_PEER: once it arrives, every frame sent
        // before it has been handled.
        try socket.send(WireMessage(channelID: 0, type: .heartbeat, payload: []).frames)
        var answered = false
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while !answered && ContinuousClock.now < deadline {
            if let frames = try socket.receive(dontWait: true) {
                answered = (try? WireMessage.parse(frames[...]))?.type == .unknownPeer
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        #expect(answered)
        let rogueLines = lines.count(containing: "unknown peer")
        #expect(rogueLines >= 1 && rogueLines <= 3, "\(rogueLines) lines for 10,000 rogue frames")
        socket.close()
        context.terminate()
        await server.stop()
    }
}
