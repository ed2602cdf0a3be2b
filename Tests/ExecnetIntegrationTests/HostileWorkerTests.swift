// A worker that breaks the protocol, played by a raw ZeroMQ DEALER in this process: the hub starts
// a shell script as the "worker", which only tells us the endpoint and routing id, and the DEALER
// speaks for it. No frame sequence may crash the client; each is dropped or ends a channel.

@testable import Execnet
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite struct HostileWorkerTests {
        @Test func byeThenFramesOnChannelsTheClientNeverMadeDoNotCrashTheClient() async throws {
            try await withRogueWorker { gateway, rogue in
                let before = gateway.channelCount
                try rogue.send(.bye, 0)
                // Issue 10 item 1: DATA on a channel id the client never made, after BYE (both parities).
                try rogue.send(.data, 7, encodeInternal(.int(1)))
                try rogue.send(.data, 8, encodeInternal(.int(1)))
                try rogue.send(.close, 10)
                try rogue.send(.closeError, 12, encodeInternal("late"))
                try rogue.send(.credit, 9, encodeInternal(.tuple([1, 1])))
                #expect(try await rogue.receive(.farewell) != nil)
                // The client still serves: a channel opened now has ended with the peer, cleanly typed.
                let late = gateway.newChannel()
                await expectExecnetError(.endOfChannel) { try await late.receive(timeout: .seconds(5)) }
                #expect(gateway.channelCount >= before)
            }
            try await expectAnHonestGatewayWorks()
        }

        @Test func framesForUnknownOrWrongChannelsAreDroppedAndAChannelClosesOnce() async throws {
            try await withRogueWorker { gateway, rogue in
                let channel = try gateway.remoteExec("anything")
                let exec = try #require(try await rogue.receive(.exec))
                #expect(exec.channelID == channel.id)
                let baseline = gateway.channelCount
                // Ids of the client's own (odd) space it never opened, id 0 and a negative id.
                for id: Int32 in [99, 0, -1] {
                    try rogue.send(.data, id, encodeInternal(.int(5)))
                    try rogue.send(.close, id)
                    try rogue.send(.closeError, id, encodeInternal("x"))
                    try rogue.send(.credit, id, encodeInternal(.tuple([1, 1])))
                }
                // Malformed payloads and frames only a client may send.
                try rogue.send(.credit, channel.id, [0xff, 0x00])
                try rogue.send(.credit, channel.id, encodeInternal(.tuple([-5, 1])))
                try rogue.send(.exec, 3, encodeInternal(.tuple(["x", .list([]), .dict([:])])))
                try rogue.send(.status, 5)
                try rogue.send(.terminate, 0)
                try rogue.send(.farewell, 0)
                try rogue.sendRaw([[0, 0, 0, 1], [3]])
                try rogue.sendRaw([[0, 0, 1], [3], []])
                try rogue.sendRaw([[0, 0, 0, 1], [200], []])
                // An honest item, the close, then a second close and an item after it.
                try rogue.send(.data, channel.id, encodeInternal("ok"))
                try rogue.send(.close, channel.id)
                try rogue.send(.close, channel.id)
                try rogue.send(.closeError, channel.id, encodeInternal("after the close"))
                try rogue.send(.data, channel.id, encodeInternal("after the close"))
                #expect(try await channel.receive(timeout: .seconds(10)) == "ok")
                await expectExecnetError(.endOfChannel) { try await channel.receive(timeout: .seconds(5)) }
                // The client answered with its own close exactly once, and nothing for the rogue ids.
                let closes = try await rogue.collect(for: .milliseconds(300)).filter { $0.type == .close || $0.type == .closeError }
                #expect(closes.map(\.channelID) == [channel.id])
                #expect(gateway.channelCount == baseline - 1)
            }
            try await expectAnHonestGatewayWorks()
        }

        @Test func aSideThatClosedSendsNoCreditForItemsTakenAfterwards() async throws {
            try await withRogueWorker { gateway, rogue in
                let channel = try gateway.remoteExec("anything")
                _ = try #require(try await rogue.receive(.exec))
                for index in 0..<600 { try rogue.send(.data, channel.id, encodeInternal(.int(Int64(index)))) }
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while channel.core.state.withLock({ $0.items.count }) < 600 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                try channel.close()
                // Items that arrived stay receivable; taking more than half a window of them
                // grants no credit: the peer may already have forgotten the channel.
                for index in 0..<600 { #expect(try await channel.receive(timeout: .seconds(5)) == .int(Int64(index))) }
                #expect(try await rogue.receive(.close)?.channelID == channel.id)
                let after = try await rogue.collect(for: .milliseconds(300))
                #expect(after.filter { $0.type == .credit }.isEmpty)
            }
        }

        @Test func aPeerChannelThatIsClosedBeforeItIsNamedIsFoundByTheValueThatNamesIt() async throws {
            try await withRogueWorker { gateway, rogue in
                let channel = try gateway.remoteExec("anything")
                _ = try #require(try await rogue.receive(.exec))
                // The worker opens channel 4, sends two items on it and closes it, and only then
                // does the client take the item naming it.
                try rogue.send(.data, channel.id, encodeInternal(.channel(Channel(id: 4))))
                try rogue.send(.data, 4, encodeInternal(.int(1)))
                try rogue.send(.data, 4, encodeInternal(.int(2)))
                try rogue.send(.close, 4)
                #expect(try await rogue.receive(.close)?.channelID == 4)
                guard case .channel(let side) = try await channel.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a channel")
                    return
                }
                #expect(side.id == 4)
                var items: [Value] = []
                for try await item in side { items.append(item) }
                #expect(items == [1, 2])
                // Named and closed on both sides: it is let go.
                #expect(gateway.connection.existingChannel(4) == nil)
            }
        }

        @Test func aWorkerFloodingFreshChannelIDsIsCutOffAtTheCapAndTheClientServesOn() async throws {
            try await withRogueWorker { gateway, rogue in
                let channel = try gateway.remoteExec("anything")
                _ = try #require(try await rogue.receive(.exec))
                // 100,000 channels "opened" by the worker that no value will ever name.
                let item = try encodeInternal(.int(1))
                for index in 0..<100_000 { try rogue.send(.data, Int32(2 + 2 * index), item) }
                try await expectCutOff(channel, "too many unnamed channels")
                #expect(gateway.connection.unnamedPeerChannelCount <= defaultMaxUnnamedPeerChannels)
                #expect(gateway.channelCount <= defaultMaxUnnamedPeerChannels + 1)
                #expect(await gateway.join(timeout: .seconds(10)) != nil)
            }
            try await expectAnHonestGatewayWorks()
        }

        @Test func aWorkerQueueingTooManyBytesOnUnnamedChannelsIsCutOff() async throws {
            try await withRogueWorker { gateway, rogue in
                let channel = try gateway.remoteExec("anything")
                _ = try #require(try await rogue.receive(.exec))
                let item = try encodeInternal(.bytes([UInt8](repeating: 7, count: 1 << 20)))
                for index in 0..<(defaultMaxUnnamedPeerBytes >> 20) + 2 { try rogue.send(.data, Int32(2 + 2 * index), item) }
                try await expectCutOff(channel, "too many bytes on unnamed channels")
                #expect(await gateway.join(timeout: .seconds(10)) != nil)
            }
            try await expectAnHonestGatewayWorks()
        }

        @Test func manyPeerChannelsWithItemsBeforeTheValueNamingThemIsTaken() async throws {
            try await withRogueWorker { gateway, rogue in
                let channel = try gateway.remoteExec("anything")
                _ = try #require(try await rogue.receive(.exec))
                // Honest: 500 worker channels named in one value, each with an item and a close that
                // arrive before the client takes the value.
                let ids = (0..<500).map { Int32(2 + 2 * $0) }
                try rogue.send(.data, channel.id, encodeInternal(.list(ids.map { .channel(Channel(id: $0)) })))
                for id in ids {
                    try rogue.send(.data, id, encodeInternal(.int(Int64(id))))
                    try rogue.send(.close, id)
                }
                guard case .list(let values) = try await channel.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a list")
                    return
                }
                for (value, id) in zip(values, ids) {
                    guard case .channel(let side) = value else {
                        Issue.record("expected a channel")
                        return
                    }
                    #expect(try await side.receive(timeout: .seconds(10)) == .int(Int64(id)))
                }
                #expect(values.count == ids.count)
                #expect(gateway.connection.unnamedPeerChannelCount == 0)
                #expect(gateway.connection.hasPeerEnded == false)
            }
        }
    }
}

/// Waits (bounded) for `channel` to end because the peer broke the unnamed-channel cap.
private func expectCutOff(_ channel: Channel, _ reason: String) async throws {
    do {
        let item = try await channel.receive(timeout: .seconds(60))
        Issue.record("expected the channel to end, got \(item)")
    } catch let error as ExecnetError {
        #expect(error.code == .endOfChannel)
        #expect(error.peerEnd?.reason.contains("protocol violation: \(reason)") == true, "\(error)")
    }
}

/// Encodes a value as a channel payload (the internal form).
private func encodeInternal(_ value: Value) throws -> [UInt8] {
    var buffer: [UInt8] = []
    try Serializer.encodeInternal(value, into: &buffer)
    return buffer
}

/// The DEALER that plays a worker.
private struct RogueWorker {
    let context: ZMQContext
    let socket: ZMQSocket

    func send(_ type: MessageType, _ channelID: Int32, _ payload: [UInt8] = []) throws {
        try sendRaw(WireMessage(channelID: channelID, type: type, payload: payload).frames)
    }

    func sendRaw(_ frames: [[UInt8]]) throws {
        _ = try socket.send(frames)
    }

    /// The next message of `type` within 10 s (others are skipped).
    func receive(_ type: MessageType) async throws -> WireMessage? {
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while ContinuousClock.now < deadline {
            if let frames = try socket.receive(dontWait: true) {
                if let message = try? WireMessage.parse(frames), message.type == type { return message }
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        return nil
    }

    /// Every message that arrives within `duration` (a bound on what may still come, not a
    /// synchronisation: the messages asserted on were sent before the client's answer awaited).
    func collect(for duration: Duration) async throws -> [WireMessage] {
        var result: [WireMessage] = []
        let deadline = ContinuousClock.now.advanced(by: duration)
        while ContinuousClock.now < deadline {
            if let frames = try socket.receive(dontWait: true) {
                if let message = try? WireMessage.parse(frames) { result.append(message) }
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        return result
    }
}

/// Runs `body` with a gateway whose worker is a DEALER in this process.
private func withRogueWorker(_ body: (Gateway, RogueWorker) async throws -> Void) async throws {
    let directory = "/tmp/execnet-rogue-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(directory, 0o700)
    defer {
        unlink(directory + "/worker.sh")
        unlink(directory + "/address")
        rmdir(directory)
    }
    let script = directory + "/worker.sh"
    let text = "#!/bin/sh\nprintf '%s\\n%s\\n' \"$EXECNET_ENDPOINT\" \"$EXECNET_ROUTING_ID\" > \"$ROGUE_DIR/address.tmp\"\n"
        + "mv \"$ROGUE_DIR/address.tmp\" \"$ROGUE_DIR/address\"\nexec sleep 600\n"
    let fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    let starting = Task { try await Group(["popen//worker=\(script)//env:ROGUE_DIR=\(directory)"]) }
    var address: [String] = []
    let deadline = ContinuousClock.now.advanced(by: .seconds(10))
    while address.count < 2 && ContinuousClock.now < deadline {
        address = readLines(directory + "/address")
        if address.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
    }
    try #require(address.count >= 2, "the rogue worker script did not start")
    let context = try ZMQContext()
    let socket = try ZMQSocket(context: context, type: .dealer)
    try socket.setLinger(milliseconds: 0)
    try socket.setRoutingID(Array(address[1].utf8))
    try socket.connect(address[0])
    let rogue = RogueWorker(context: context, socket: socket)
    try rogue.send(.hello, 0, ControlPayload(["protocol": .int(wireProtocolVersion), "pid": .int(Int64(getpid()))]).encoded)
    let group = try await starting.value
    do {
        try await body(group[0], rogue)
    } catch {
        await group.terminate(timeout: .milliseconds(100))
        socket.close()
        context.terminate()
        throw error
    }
    await group.terminate(timeout: .milliseconds(100))
    socket.close()
    context.terminate()
}

private func readLines(_ path: String) -> [String] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return [] }
    return String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").map(String.init)
}

/// A well-behaved gateway in this same client still runs a task end to end.
private func expectAnHonestGatewayWorks() async throws {
    try await withTestGroup(1) { group in
        let channel = try group[0].remoteExec("wait-release")
        try await channel.send("alive")
        #expect(try await channel.receive(timeout: .seconds(10)) == "alive")
    }
}
