// A bounded fuzz of the client's embedded hub from a raw peer: a ZeroMQ DEALER in this process
// impersonates the worker of a gateway (the hub starts a shell script as the "worker", which only
// reports the endpoint and routing id) and sends 100,000 messages in batches: random types,
// truncated and oversize payloads, channel ids of both parities (including the ids the honest
// gateway uses on its own connection), forged CREDIT, random frame counts, garbage. After each
// batch: this process (the client) is alive, an honest gateway of the same group still runs a task
// end to end and received nothing it did not send, and the client's memory is within a wide bound.
// An impersonator may be cut off (a protocol violation ends its gateway); the next batch then gets
// a fresh one.

@testable import Execnet
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite struct HubFuzzTests {
        @Test func aHundredThousandHostileWorkerMessagesLeaveTheClientServingAndTheHonestGatewayUntouched() async throws {
            let seed: UInt64 = 0x4855_4246_757a_7a31
            print("hub fuzz: seed 0x\(String(seed, radix: 16))")
            var random = FuzzRandom(seed: seed)
            let group = try await Group([testWorkerSpec()])
            let honest = group[0]
            let echo = try honest.remoteExec("echo")
            let directory = "/tmp/execnet-hubfuzz-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            mkdir(directory, 0o700)
            defer { removeImpersonatorFiles(directory) }
            let baseline = try residentBytes(getpid())
            let batches = 20, perBatch = 5_000
            var rogue: Impersonator?
            var started = 0, ended = 0, sent = 0
            var reasons: [String: Int] = [:]
            do {
                for batch in 0..<batches {
                    for index in 0..<perBatch {
                        // A fresh impersonator when the last one was cut off (checked every 100 messages).
                        if rogue == nil || (index % 100 == 0 && rogue!.gateway.connection.hasPeerEnded) {
                            if let old = rogue {
                                ended += 1
                                reasons[await endReason(old.gateway), default: 0] += 1
                                old.close()
                            }
                            rogue = try await Impersonator(group: group, directory: directory, index: started)
                            started += 1
                        }
                        if try await rogue!.send(random.workerMessage(ids: [rogue!.channel.id, echo.id])) { sent += 1 }
                    }
                    let current = rogue!
                    current.drain()
                    // The client is alive and bounded.
                    #expect(kill(getpid(), 0) == 0)
                    let resident = try residentBytes(getpid())
                    #expect(resident < baseline + (300 << 20),
                            "batch \(batch): the client grew from \(baseline >> 20) to \(resident >> 20) MiB")
                    // The honest gateway was never cut off, got nothing it did not send, and still serves.
                    #expect(honest.connection.hasPeerEnded == false, "batch \(batch): the honest gateway was cut off")
                    #expect(echo.core.state.withLock { $0.items.isEmpty }, "batch \(batch): the honest channel got a foreign item")
                    let token = Value.string("honest-\(batch)")
                    try await echo.send(token)
                    #expect(try await echo.receive(timeout: .seconds(20)) == token)
                    print("hub fuzz: batch \(batch + 1) of \(batches), impersonators started \(started), cut off \(ended)")
                }
            } catch {
                rogue?.close()
                await group.terminate(timeout: .seconds(1))
                throw error
            }
            if let last = rogue {
                if last.gateway.connection.hasPeerEnded {
                    ended += 1
                    reasons[await endReason(last.gateway), default: 0] += 1
                }
                last.close()
            }
            print("hub fuzz: \(sent) messages sent, \(started) impersonators, \(ended) cut off")
            for (reason, count) in reasons.sorted(by: { $0.value > $1.value }) { print("hub fuzz: \(count) × \(reason)") }
            #expect(sent >= batches * perBatch * 9 / 10, "only \(sent) messages reached the hub's socket")
            #expect(honest.connection.hasPeerEnded == false)
            try echo.close()
            await group.terminate(timeout: .seconds(2))
        }
    }
}

/// A raw DEALER that speaks for the worker of a gateway of `group`.
private struct Impersonator {
    let context: ZMQContext
    let socket: ZMQSocket
    let gateway: Gateway
    /// A channel the client opened to the impersonator (an exec it never answers).
    let channel: Channel

    init(group: Group, directory: String, index: Int) async throws {
        let address = directory + "/address\(index)"
        let script = directory + "/worker.sh"
        let text = "#!/bin/sh\nprintf '%s\\n%s\\n' \"$EXECNET_ENDPOINT\" \"$EXECNET_ROUTING_ID\" > \"$ROGUE_FILE.tmp\"\n"
            + "mv \"$ROGUE_FILE.tmp\" \"$ROGUE_FILE\"\nexec sleep 600\n"
        let fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
        Glibc.close(fd)
        let starting = Task { try await group.makeGateway("popen//worker=\(script)//env:ROGUE_FILE=\(address)", startupTimeout: .seconds(20)) }
        var lines: [String] = []
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while lines.count < 2 && ContinuousClock.now < deadline {
            lines = readAddress(address)
            if lines.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
        }
        unlink(address)
        try #require(lines.count >= 2, "the impersonated worker script did not start")
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.setRoutingID(Array(lines[1].utf8))
        try socket.connect(lines[0])
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["pid"] = .int(Int64(getpid()))
        _ = try socket.send(WireMessage(channelID: 0, type: .hello, payload: hello.encoded).frames)
        gateway = try await starting.value
        channel = try gateway.remoteExec("anything")
    }

    /// Sends without blocking; on a full queue drains what the client sent and retries (bounded).
    func send(_ frames: [[UInt8]]) async throws -> Bool {
        for _ in 0..<200 {
            if (try? socket.send(frames, dontWait: true)) == true { return true }
            drain()
            try await Task.sleep(for: .milliseconds(1))
        }
        return false
    }

    /// Throws away what the client sent to the impersonator (credits, closes, farewells).
    func drain() {
        for _ in 0..<100_000 {
            guard let frames = try? socket.receive(dontWait: true), !frames.isEmpty else { return }
        }
    }

    func close() {
        gateway.kill(signal: SIGKILL)
        socket.close()
        context.terminate()
    }
}

private extension FuzzRandom {
    /// A message from a hostile worker: `ids` are channel ids worth hitting (the impersonator's own
    /// channel, and the honest gateway's channel id, which on the impersonator's connection names nothing).
    mutating func workerMessage(ids: [Int32]) -> [[UInt8]] {
        let channel: [UInt8]
        switch Int.random(in: 0..<8, using: &self) {
        case 0, 1: channel = WireMessage.channelFrame(ids.randomElement(using: &self)!)
        case 2: channel = WireMessage.channelFrame(Int32.random(in: 1...40, using: &self) * 2)
        case 3: channel = WireMessage.channelFrame(Int32.random(in: 0...20, using: &self) * 2 + 1)
        default: channel = channelFrame()
        }
        switch Int.random(in: 0..<9, using: &self) {
        case 0:
            // Random multipart count and contents.
            return (0..<Int.random(in: 1...9, using: &self)).map { _ in bytes(Int.random(in: 0...12, using: &self)) }
        case 1:
            // Truncated: a well-formed message with frames missing at the end.
            return Array([channel, [MessageType.data.rawValue], internalValue()].prefix(Int.random(in: 1...2, using: &self)))
        case 2:
            return [channel, [MessageType.credit.rawValue], credit()]
        case 3, 4:
            return [channel, [MessageType.data.rawValue], internalValue()]
        case 5:
            return [channel, [MessageType.data.rawValue], payload()]
        case 6:
            // Every type a worker may or may not send; BYE and HELLO rarely, as they end the peer.
            let types: [MessageType] = [.close, .closeError, .exec, .status, .terminate, .farewell, .heartbeat, .clientHello, .welcome]
            let type = Int.random(in: 0..<500, using: &self) == 0 ? [MessageType.bye, .hello].randomElement(using: &self)! : types.randomElement(using: &self)!
            return [channel, [type.rawValue], Bool.random(using: &self) ? internalValue() : payload()]
        case 7:
            // Extra frames after a plausible message.
            return [channel, [MessageType.data.rawValue], internalValue()] + (0..<Int.random(in: 1...3, using: &self)).map { _ in bytes(4) }
        default:
            // Any type byte; BYE (which ends the peer legitimately) only as rarely as above.
            var type = typeFrame()
            if type == [MessageType.bye.rawValue] && Int.random(in: 0..<50, using: &self) != 0 { type = [MessageType.data.rawValue] }
            return [channel, type, payload()]
        }
    }

    /// An internal-form payload: a valid value (some naming channels), a truncated one, or an oversize one.
    mutating func internalValue() -> [UInt8] {
        var value: Value
        switch Int.random(in: 0..<6, using: &self) {
        case 0: value = .int(Int64.random(in: .min ... .max, using: &self))
        case 1: value = .channel(Channel(id: Int32.random(in: -4...60, using: &self)))
        case 2: value = .list((0..<Int.random(in: 0...4, using: &self)).map { _ in .channel(Channel(id: Int32.random(in: 1...30, using: &self) * 2)) })
        case 3: value = .bytes(bytes(Int.random(in: 0...64, using: &self)))
        case 4:
            // Oversize next to everything else (a quarter of a MiB), now and then.
            value = .bytes([UInt8](repeating: 0x5a, count: Int.random(in: 0..<100, using: &self) == 0 ? 256 << 10 : 16))
        default: value = .tuple([.string("x"), .dict([.string("k"): .float(Double(Int.random(in: 0...9, using: &self)))])])
        }
        var buffer: [UInt8] = []
        do { try Serializer.encodeInternal(value, into: &buffer) } catch { return bytes(8) }
        if Int.random(in: 0..<6, using: &self) == 0 { return Array(buffer.prefix(Int.random(in: 0..<max(buffer.count, 1), using: &self))) }
        return buffer
    }
}

/// Why `gateway`'s peer ended, as a channel opened now reports it.
private func endReason(_ gateway: Gateway) async -> String {
    do {
        _ = try await gateway.newChannel().receive(timeout: .seconds(5))
        return "not ended"
    } catch let error as ExecnetError {
        // Without the gateway id, so that equal reasons count together.
        return (error.peerEnd?.reason ?? "\(error)").replacing(gateway.id, with: "gw")
    } catch {
        return "\(error)"
    }
}

private func readAddress(_ path: String) -> [String] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return [] }
    return String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").map(String.init)
}

private func removeImpersonatorFiles(_ directory: String) {
    unlink(directory + "/worker.sh")
    rmdir(directory)
}
