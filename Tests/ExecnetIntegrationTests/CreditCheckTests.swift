// Flow control end to end: `waitClose()` then iterate works past the window (the drain grant), a
// slow consumer of an endless producer still holds at most a window, and the broker checks credit:
// a client that lies about its credit, or sends beyond it, is cut off and the broker does not grow;
// past its memory cap the broker refuses new gateways.

@testable import Execnet
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite struct CreditCheckTests {
        @Test(arguments: GatewayKind.allCases) func waitCloseThenIterateWorksPastTheWindow(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                for count in [FlowWindow.messages + 1, 100_000] {
                    let channel = try group[0].remoteExec("count", .int(Int64(count)))
                    try await channel.waitClose(timeout: .seconds(60))
                    var next: Int64 = 0
                    for try await item in channel {
                        #expect(item == .int(next))
                        next += 1
                    }
                    #expect(next == Int64(count))
                }
            }
        }

        @Test(arguments: GatewayKind.allCases) func waitCloseBlockingThenIterateWorksPastTheWindow(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("count", .int(5000))
                try await runOnThread { try channel.waitCloseBlocking(timeout: .seconds(60)) }
                var received = 0
                for try await _ in channel { received += 1 }
                #expect(received == 5000)
            }
        }

        /// Without a waiter for the close, a consumer that takes items slowly from an endless
        /// producer never holds more than a window; a waiter that gives up stops the drain again,
        /// and what it was granted ahead is then taken before the window refills.
        @Test(arguments: GatewayKind.allCases) func aSlowConsumerOfAnEndlessProducerHoldsAtMostAWindow(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("count", .int(1_000_000_000))
                var next: Int64 = 0
                func takeSome(_ count: Int) async throws {
                    for _ in 0..<count {
                        #expect(try await channel.receive(timeout: .seconds(10)) == .int(next))
                        next += 1
                        // Items granted ahead for a waiter for the close aside, at most a window is held.
                        let held = channel.core.state.withLock { $0.items.count - $0.aheadMessages }
                        if held > FlowWindow.messages {
                            Issue.record("\(held) items held beyond the window")
                            return
                        }
                    }
                }
                try await takeSome(3 * FlowWindow.messages)
                await expectExecnetError(.timeout) { try await channel.waitClose(timeout: .milliseconds(300)) }
                #expect(!channel.core.state.withLock { $0.draining })
                // What the waiter was granted ahead is taken first; after it, the window holds again.
                let ahead = channel.core.state.withLock { $0.aheadMessages }
                try await takeSome(ahead + 3 * FlowWindow.messages)
                try channel.close()
                // The task ends on the close; its own close ends the items in flight. (Terminating the
                // gateway with items still in flight hits the registry's recursive lock, issue 10 item 1.)
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while !channel.core.state.withLock({ $0.remoteClosed }) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(channel.core.state.withLock { $0.remoteClosed })
            }
        }

        // MARK: - The broker checks credit

        @Test func aClientThatGrantsCreditItWasNotOwedIsCutOffAndTheBrokerDoesNotGrow() async throws {
            let (broker, endpoint) = try startBroker()
            defer { stopChild(broker) }
            let agent = try startAgent(endpoint, name: "flowhost")
            defer { stopChild(agent) }
            let liar = try await RawClient(endpoint)
            defer { liar.close() }
            let worker = try await liar.spawn("liar.1")
            try liar.send(to: worker, channel: 1, .exec, encodePlain(.tuple(["count", .list([.int(1_000_000_000)]), .dict([:])])))
            // The task has started sending (a grant before any DATA is owed for nothing and dropped).
            #expect(try await liar.receive(.data, from: worker) != nil)
            let before = try residentBytes(broker.pid)
            // 10⁹ messages and 64 GiB of credit, then nothing is read.
            try liar.send(to: worker, channel: 1, .credit, encodePlain(.tuple([.int(1_000_000_000), .int(1 << 36)])))
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            var gone = false
            while ContinuousClock.now < deadline {
                try liar.heartbeat()
                if try residentBytes(broker.pid) > before + (400 << 20) { break }
                if try await brokerGatewayCount(endpoint) == 0 { gone = true; break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let after = try residentBytes(broker.pid)
            #expect(after < before + (200 << 20), "the broker grew from \(before >> 20) to \(after >> 20) MiB")
            #expect(gone)
            let lost = try #require(try await liar.receive(.peerLost))
            let cause = ControlPayload(decoding: lost[3])?.string("cause") ?? ""
            #expect(cause.contains("cut off") && cause.contains("granted credit"))
            try await expectBrokerServes(endpoint)
        }

        /// The broker sees the DATA beyond the credit before the worker does, so the broker's cut-off
        /// (which protects the other tenants) is what the client hears; the worker never gets the
        /// extra DATA. The receiver side of the same rule is covered by
        /// ChannelStateTests.theReceiverRefusesItemsBeyondTheWindowItGranted.
        @Test func aClientThatSendsBeyondItsCreditIsCutOff() async throws {
            let (broker, endpoint) = try startBroker()
            defer { stopChild(broker) }
            let agent = try startAgent(endpoint, name: "floodhost")
            defer { stopChild(agent) }
            let liar = try await RawClient(endpoint)
            defer { liar.close() }
            let worker = try await liar.spawn("flood.1")
            // The task never reads and never ends, so no credit comes back and the channel stays open
            // (a task that reads one item and ends closes the channel, and the broker forgets its
            // ledger: DATA racing past that close started a fresh window and was not caught).
            try liar.send(to: worker, channel: 1, .exec, encodePlain(.tuple(["pid-then-sleep", .list([]), .dict([:])])))
            #expect(try await liar.receive(.data, from: worker) != nil)
            for index in 0...FlowWindow.messages {
                try liar.send(to: worker, channel: 1, .data, encodePlain(.int(Int64(index))))
            }
            let lost = try #require(try await liar.receive(.peerLost))
            let cause = ControlPayload(decoding: lost[3])?.string("cause") ?? ""
            #expect(cause.contains("cut off") && cause.contains("beyond its credit"))
            #expect(try await brokerGatewayCount(endpoint) == 0)
            try await expectBrokerServes(endpoint)
        }

        /// Control answers are not covered by credit: a client that asks for status without end
        /// and never reads is cut off once its queue passes the allowance.
        @Test func aClientThatLeavesTooMuchUnreadIsCutOff() async throws {
            let (broker, endpoint) = try startBroker()
            defer { stopChild(broker) }
            let reader = try await RawClient(endpoint)
            defer { reader.close() }
            let before = try residentBytes(broker.pid)
            #expect(try await brokerClientCount(endpoint) == 1)
            let request = [[]] + WireMessage(channelID: 1, type: .brokerStatus, payload: []).frames
            var cutOff = false
            for round in 0..<40 {
                for _ in 0..<10_000 { try reader.socket.send(request) }
                if round % 4 == 3, try await brokerClientCount(endpoint) == 0 { cutOff = true; break }
            }
            // The requests may still wait in the broker's receive pipe: the cut-off comes when it
            // reaches them (bounded wait for that event).
            let deadline = ContinuousClock.now.advanced(by: .seconds(15))
            while !cutOff && ContinuousClock.now < deadline {
                if try await brokerClientCount(endpoint) == 0 { cutOff = true } else { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(cutOff)
            let after = try residentBytes(broker.pid)
            #expect(after < before + (200 << 20), "the broker grew from \(before >> 20) to \(after >> 20) MiB")
        }

        @Test func pastItsMemoryCapTheBrokerRefusesNewGateways() async throws {
            let (broker, endpoint) = try startBroker(["--max-in-flight-mib", "1"])
            defer { stopChild(broker) }
            let agent = try startAgent(endpoint, name: "caphost")
            defer { stopChild(agent) }
            let client = try await RawClient(endpoint)
            defer { client.close() }
            let worker = try await client.spawn("cap.1")
            try client.send(to: worker, channel: 1, .exec, encodePlain(.tuple(["echo", .list([]), .dict([:])])))
            // 2 MiB each way, within the window, none of it granted back yet.
            let item = encodePlain(.bytes([UInt8](repeating: 7, count: 512 << 10)))
            for _ in 0..<4 { try client.send(to: worker, channel: 1, .data, item) }
            for _ in 0..<4 { #expect(try await client.receive(.data) != nil) }
            let refused = try await client.spawnRefusal("cap.2")
            #expect(refused.contains("memory cap"))
            // The gateway in flight still works.
            try client.send(to: worker, channel: 1, .data, encodePlain(.int(5)))
            #expect(try await client.receive(.data)?[3] == encodePlain(.int(5)))
        }
    }
}

// MARK: - Helpers

/// A client written with a raw DEALER, as a lying client would write one.
final class RawClient {
    let context: ZMQContext
    let socket: ZMQSocket

    init(_ endpoint: String) async throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.connect(endpoint)
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        try socket.send([[]] + WireMessage(channelID: 0, type: .clientHello, payload: hello.encoded).frames)
        guard try await receive(.welcome) != nil else { throw ExecnetError(.timeout, "no WELCOME") }
    }

    /// Spawns a test worker at `address` and waits for its HELLO.
    func spawn(_ name: String) async throws -> PeerAddress {
        let address = try requestSpawn(name)
        guard try await receive(.hello, from: address, within: .seconds(20)) != nil else {
            throw ExecnetError(.timeout, "worker \(name) did not say hello")
        }
        return address
    }

    /// Asks for a test worker and returns the reason it was refused.
    func spawnRefusal(_ name: String) async throws -> String {
        try requestSpawn(name)
        guard let frames = try await receive(.spawnFailed) else { throw ExecnetError(.timeout, "no SPAWN_FAILED") }
        return decodeString(frames[3]) ?? ""
    }

    @discardableResult
    private func requestSpawn(_ name: String) throws -> PeerAddress {
        let address = Array(name.utf8)
        var request = ControlPayload()
        request["address"] = .bytes(address)
        request["gateway"] = .string(name)
        request["worker"] = .string("\(buildDirectory())/ExecnetTestWorker")
        request["env"] = .dict([:])
        try socket.send([[]] + WireMessage(channelID: 0, type: .spawn, payload: request.encoded).frames)
        return address
    }

    /// Keeps this client registered (the tests' broker expires a silent peer after 0.6 s).
    func heartbeat() throws {
        try socket.send([[]] + WireMessage(channelID: 0, type: .heartbeat, payload: []).frames)
    }

    func send(to worker: PeerAddress, channel: Int32, _ type: MessageType, _ payload: [UInt8]) throws {
        try socket.send([worker] + WireMessage(channelID: channel, type: type, payload: payload).frames)
    }

    /// The next `[address][channel][type][payload]` message of `type` (others are skipped).
    func receive(_ type: MessageType, from address: PeerAddress? = nil, within bound: Duration = .seconds(10)) async throws -> [[UInt8]]? {
        let deadline = ContinuousClock.now.advanced(by: bound)
        while ContinuousClock.now < deadline {
            if let frames = try socket.receive(dontWait: true) {
                if frames.count == 4, (try? WireMessage.parse(frames.dropFirst()))?.type == type,
                    address == nil || frames[0] == address
                {
                    return frames
                }
            } else {
                try heartbeat()
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        return nil
    }

    func close() {
        socket.close()
        context.terminate()
    }
}

/// The resident set size of a process, from /proc.
func residentBytes(_ pid: Int32) throws -> Int {
    guard let file = fopen("/proc/\(pid)/status", "r") else { throw ExecnetError(.transport, "no /proc/\(pid)/status") }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") {
            let kib = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return kib << 10
        }
    }
    throw ExecnetError(.transport, "no VmRSS for \(pid)")
}

/// How many gateways the broker at `endpoint` lists.
func brokerGatewayCount(_ endpoint: String) async throws -> Int {
    guard case .dict(let status) = try await fetchBrokerStatus(endpoint), case .int(let count)? = status[.string("workers")] else {
        throw ExecnetError(.protocolViolation, "no worker count in the broker's status")
    }
    return Int(count)
}

/// How many clients the broker at `endpoint` has registered.
func brokerClientCount(_ endpoint: String) async throws -> Int {
    guard case .dict(let status) = try await fetchBrokerStatus(endpoint), case .int(let count)? = status[.string("clients")] else {
        throw ExecnetError(.protocolViolation, "no client count in the broker's status")
    }
    return Int(count)
}

/// A fresh client runs a task end to end through the broker at `endpoint`.
func expectBrokerServes(_ endpoint: String) async throws {
    let group = try Group()
    let gateway = try await group.makeGateway("broker=\(endpoint)//worker=\(buildDirectory())/ExecnetTestWorker",
                                              startupTimeout: .seconds(10))
    let echo = try gateway.remoteExec("echo")
    try await echo.send("fresh")
    #expect(try await echo.receive(timeout: .seconds(10)) == "fresh")
    try echo.close()
    await group.terminate(timeout: .seconds(2))
}

/// Runs blocking code on a thread of its own.
func runOnThread(_ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        OSThread(name: "test-blocking") { continuation.resume(with: Result { try body() }) }.detach()
    }
}
