// A bounded fuzz of the broker from registered raw peers: two clients, each with a worker of its
// own, and one agent send 100,000 messages in batches: random types, truncated and oversize frames,
// wrong channel ids, forged CREDIT, random multipart counts, frames addressed to another client's
// worker. After each batch: the broker is alive, its memory is within a wide bound, a fresh client
// runs a task end to end, and the victim client received nothing but its own echo.

@testable import Execnet
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite struct BrokerFuzzTests {
        @Test func aHundredThousandHostileMessagesLeaveTheBrokerServingAndOtherClientsUntouched() async throws {
            let (broker, endpoint) = try startBroker(["--max-message-size", "65536"])
            defer { stopChild(broker) }
            let agent = try startAgent(endpoint, name: "fuzzhost", slots: 64)
            defer { stopChild(agent) }
            let victims = try Group()
            let victimGateway = try await victims.makeGateway(
                "broker=\(endpoint)//worker=\(buildDirectory())/ExecnetTestWorker", startupTimeout: .seconds(10))
            let victim = try victimGateway.remoteExec("echo")
            let victimAddress = victimGateway.routingID
            let baseline = try residentBytes(broker.pid)
            var random = FuzzRandom(seed: 0x5eed_f00d)
            let batches = 20, perPeer = 2500
            for batch in 0..<batches {
                print("broker fuzz: batch \(batch + 1) of \(batches)")
                // Two registered clients, each with a fresh worker running echo, and one agent.
                var attackers: [(RawClient, PeerAddress)] = []
                for index in 0..<2 {
                    let client = try await RawClient(endpoint)
                    let own = try await client.spawn("fz\(index).\(batch)")
                    try client.send(to: own, channel: 1, .exec, encodePlain(.tuple(["echo", .list([]), .dict([:])])))
                    attackers.append((client, own))
                }
                let fakeAgent = try FuzzAgent(endpoint)
                for (client, own) in attackers {
                    for _ in 0..<perPeer {
                        let frames = random.clientMessage(own: own, victim: victimAddress)
                        _ = try? client.socket.send(frames, dontWait: true)
                    }
                }
                for _ in 0..<(perPeer / 5) { _ = try? fakeAgent.socket.send(random.agentMessage(victim: victimAddress), dontWait: true) }
                // Nothing of the victim's reaches an attacker: about the victim's worker, an attacker
                // hears only PEER_LOST (the answer to writing to a gateway that is not its own).
                var leaks = 0
                for (client, own) in attackers {
                    // Bounded: a peer whose oversize frame got its connection dropped may hold fewer.
                    for _ in 0..<100_000 {
                        guard let frames = try client.socket.receive(dontWait: true) else { break }
                        let type = frames.count == 4 ? (try? WireMessage.parse(frames.dropFirst()))?.type : nil
                        if frames.first == victimAddress && type != .peerLost { leaks += 1 }
                        if frames.contains(Array("victim-secret".utf8)) { leaks += 1 }
                    }
                    var order = ControlPayload()
                    order["signal"] = .int(Int64(SIGKILL))
                    _ = try? client.socket.send([own] + WireMessage(channelID: 0, type: .kill, payload: order.encoded).frames,
                                                dontWait: true)
                    client.close()
                }
                fakeAgent.close()
                #expect(leaks == 0, "batch \(batch): \(leaks) messages of the victim reached an attacker")
                // The broker is alive, bounded, and serves a fresh client end to end.
                #expect(kill(broker.pid, 0) == 0)
                let resident = try residentBytes(broker.pid)
                #expect(resident < baseline + (200 << 20), "batch \(batch): the broker grew from \(baseline >> 20) to \(resident >> 20) MiB")
                try await expectBrokerServes(endpoint)
                // The victim got nothing it did not ask for, and still works.
                #expect(victim.core.state.withLock { $0.items.isEmpty })
                try await victim.send(.bytes(Array("victim-secret".utf8)))
                #expect(try await victim.receive(timeout: .seconds(10)) == .bytes(Array("victim-secret".utf8)))
            }
            try victim.close()
            await victims.terminate(timeout: .seconds(2))
        }
    }
}

/// A raw peer registered as an agent with no slots (it is never given a worker).
private struct FuzzAgent {
    let context: ZMQContext
    let socket: ZMQSocket

    init(_ endpoint: String) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.connect(endpoint)
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["name"] = "fuzzagent"
        hello["slots"] = 0
        try socket.send(WireMessage(channelID: 0, type: .agentHello, payload: hello.encoded).frames)
    }

    func close() {
        socket.close()
        context.terminate()
    }
}

/// A seeded generator of hostile messages (SplitMix64), so a failing batch can be replayed.
struct FuzzRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }

    mutating func channelFrame() -> [UInt8] {
        switch Int.random(in: 0..<6, using: &self) {
        case 0: return bytes(Int.random(in: 0...6, using: &self))
        case 1: return WireMessage.channelFrame(0)
        case 2: return WireMessage.channelFrame(1)
        default: return WireMessage.channelFrame(Int32.random(in: .min ... .max, using: &self))
        }
    }

    mutating func typeFrame() -> [UInt8] {
        Int.random(in: 0..<10, using: &self) == 0 ? bytes(Int.random(in: 0...2, using: &self)) : [UInt8.random(in: 0...30, using: &self)]
    }

    mutating func payload() -> [UInt8] {
        switch Int.random(in: 0..<8, using: &self) {
        case 0: return []
        case 1: return encodePlain(.int(Int64.random(in: .min ... .max, using: &self)))
        case 2:
            // A valid encoding cut short.
            let whole = encodePlain(.tuple([.string("echo"), .list([.int(1)]), .dict(["k": .bytes(bytes(20))])]))
            return Array(whole.prefix(Int.random(in: 0..<whole.count, using: &self)))
        case 3:
            // Oversize for this broker (64 KiB): the peer's connection is dropped.
            return Int.random(in: 0..<200, using: &self) == 0 ? bytes(70_000) : bytes(100)
        default: return bytes(Int.random(in: 0...40, using: &self))
        }
    }

    /// A forged grant: huge, negative, malformed or plausible.
    mutating func credit() -> [UInt8] {
        switch Int.random(in: 0..<4, using: &self) {
        case 0: return encodePlain(.tuple([.int(1_000_000_000), .int(1 << 40)]))
        case 1: return encodePlain(.tuple([.int(-1), .int(Int64.random(in: .min ... .max, using: &self))]))
        case 2: return encodePlain(.tuple([.int(Int64.random(in: 0...600, using: &self)), .int(Int64.random(in: 0...10_000, using: &self))]))
        default: return bytes(Int.random(in: 0...12, using: &self))
        }
    }

    /// A message from a registered client: its own worker `own`, another client's `victim`.
    mutating func clientMessage(own: PeerAddress, victim: PeerAddress) -> [[UInt8]] {
        let target: [UInt8]
        switch Int.random(in: 0..<6, using: &self) {
        case 0: target = []
        case 1: target = victim
        case 2: target = bytes(Int.random(in: 0...8, using: &self))
        default: target = own
        }
        switch Int.random(in: 0..<7, using: &self) {
        case 0:
            // Random multipart count and contents.
            return (0..<Int.random(in: 1...9, using: &self)).map { _ in bytes(Int.random(in: 0...12, using: &self)) }
        case 1:
            // Truncated: a well-formed message with frames missing at the end.
            let whole = [target, WireMessage.channelFrame(1), [MessageType.data.rawValue], encodePlain(.int(1))]
            return Array(whole.prefix(Int.random(in: 1...3, using: &self)))
        case 2:
            return [target, channelFrame(), [MessageType.credit.rawValue], credit()]
        case 3:
            return [target, channelFrame(), [MessageType.data.rawValue], payload()]
        case 4:
            let types: [MessageType] = [.close, .closeError, .exec, .status, .terminate, .farewell, .kill, .bye, .hello]
            return [target, channelFrame(), [types.randomElement(using: &self)!.rawValue], payload()]
        default:
            return [target, channelFrame(), typeFrame(), payload()]
        }
    }

    /// A message from a registered agent (no target frame).
    mutating func agentMessage(victim: PeerAddress) -> [[UInt8]] {
        let types: [MessageType] = [.spawned, .spawnFailed, .workerExited, .heartbeat, .data, .credit]
        var report = ControlPayload()
        report["address"] = .bytes(victim)
        report["exited"] = 0
        switch Int.random(in: 0..<3, using: &self) {
        case 0: return [WireMessage.channelFrame(0), [types.randomElement(using: &self)!.rawValue], report.encoded]
        case 1: return [channelFrame(), typeFrame(), payload()]
        default: return (0..<Int.random(in: 1...5, using: &self)).map { _ in bytes(Int.random(in: 0...10, using: &self)) }
        }
    }
}
