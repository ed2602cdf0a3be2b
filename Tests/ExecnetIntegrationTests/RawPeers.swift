// Raw peers for the tests that play a hostile, lying or confused party: a bare DEALER, a client
// registered at a broker by hand, and a gateway whose "worker" is a DEALER in this process.
// Waiting for a message is a bounded async poll (see `pollFor`): it suspends between attempts and
// never blocks the cooperative pool.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A raw DEALER connected to an endpoint, as a hostile or confused peer would use one.
final class RawDealer {
    let context: ZMQContext
    let socket: ZMQSocket

    /// Connects to `endpoint`, as `routingID` if given.
    init(_ endpoint: String, routingID: [UInt8]? = nil) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(milliseconds: 0)
        if let routingID { try socket.setRoutingID(routingID) }
        try socket.connect(endpoint)
    }

    /// The next message whose frames `accept` takes, within `bound` (others are dropped);
    /// `whileWaiting` runs before each pause (a heartbeat, say).
    func receive(within bound: Duration, whileWaiting: () throws -> Void = {},
                 _ accept: ([[UInt8]]) -> Bool) async throws -> [[UInt8]]? {
        try await pollFor(within: bound) {
            while let frames = try socket.receive(dontWait: true) {
                if accept(frames) { return frames }
            }
            try whileWaiting()
            return nil
        }
    }

    /// The next `[address][channel][type][payload]` message of `type` (from `address` if given)
    /// within `bound`.
    func receiveAddressed(_ type: MessageType, from address: PeerAddress? = nil, within bound: Duration,
                          whileWaiting: () throws -> Void = {}) async throws -> [[UInt8]]? {
        try await receive(within: bound, whileWaiting: whileWaiting) { frames in
            frames.count == 4 && (try? WireMessage.parse(frames.dropFirst()))?.type == type
                && (address == nil || frames[0] == address)
        }
    }

    func close() {
        socket.close()
        context.terminate()
    }
}

/// A client written with a raw DEALER, as a lying client would write one: registered at the
/// broker (CLIENT_HELLO, WELCOME), and kept registered by heartbeats while it waits.
final class RawClient {
    let dealer: RawDealer
    var socket: ZMQSocket { dealer.socket }

    init(_ endpoint: String) async throws {
        dealer = try RawDealer(endpoint)
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

    /// Keeps this client registered (the tests' broker expires a silent peer after 1 s).
    func heartbeat() throws {
        try socket.send([[]] + WireMessage(channelID: 0, type: .heartbeat, payload: []).frames)
    }

    func send(to worker: PeerAddress, channel: Int32, _ type: MessageType, _ payload: [UInt8]) throws {
        try socket.send([worker] + WireMessage(channelID: channel, type: type, payload: payload).frames)
    }

    /// The next `[address][channel][type][payload]` message of `type` (others are skipped).
    func receive(_ type: MessageType, from address: PeerAddress? = nil, within bound: Duration = .seconds(10)) async throws -> [[UInt8]]? {
        try await dealer.receiveAddressed(type, from: address, within: bound, whileWaiting: heartbeat)
    }

    func close() { dealer.close() }
}

/// A gateway "worker" that is a shell script: it writes where the hub is and its routing id to
/// `$ROGUE_FILE` and sleeps, so a DEALER in this process can speak for it (``connect(_:within:)``).
struct RogueWorkerScript {
    let directory: String
    var script: String { directory + "/worker.sh" }

    /// Writes the script into a fresh private directory named after `label`.
    init(label: String) {
        directory = "/tmp/execnet-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o700)
        let text = "#!/bin/sh\nprintf '%s\\n%s\\n' \"$EXECNET_ENDPOINT\" \"$EXECNET_ROUTING_ID\" > \"$ROGUE_FILE.tmp\"\n"
            + "mv \"$ROGUE_FILE.tmp\" \"$ROGUE_FILE\"\nexec sleep 600\n"
        // Close-on-exec: a worker spawned meanwhile must not hold it open for writing (ETXTBSY).
        let fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
        Glibc.close(fd)
    }

    /// The spec of a gateway running the script, which reports to the file `report` of the directory.
    func spec(report: String) -> String {
        "popen//worker=\(script)//env:ROGUE_FILE=\(directory)/\(report)"
    }

    /// Waits (bounded) for the script started with `spec(report:)` to report, then connects a
    /// DEALER as that worker and says hello for it.
    func connect(_ report: String, within bound: Duration) async throws -> RawDealer {
        let path = directory + "/" + report
        let lines = try await pollFor(within: bound, every: .milliseconds(10)) { () -> [String]? in
            let lines = readLines(path)
            return lines.count >= 2 ? lines : nil
        }
        unlink(path)
        let address = try #require(lines, "the rogue worker script did not start")
        let dealer = try RawDealer(address[0], routingID: Array(address[1].utf8))
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["pid"] = .int(Int64(getpid()))
        _ = try dealer.socket.send(WireMessage(channelID: 0, type: .hello, payload: hello.encoded).frames)
        return dealer
    }

    func remove() {
        unlink(script)
        rmdir(directory)
    }
}

/// The lines of a small text file, or none if it cannot be read.
private func readLines(_ path: String) -> [String] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return [] }
    return String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").map(String.init)
}

/// This test as an agent's broker: a ROUTER on TCP loopback (optionally a CURVE server with a key
/// nobody holds) and `execnet-agent` processes connected to it, for the tests that answer the
/// agent by hand.
final class RawAgentBroker {
    let context: ZMQContext
    let router: ZMQSocket
    let endpoint: String

    init(curveServer: Bool = false) throws {
        context = try ZMQContext()
        router = try ZMQSocket(context: context, type: .router)
        try router.setLinger(milliseconds: 0)
        if curveServer {
            try router.setCurveServer(true)
            try router.setCurveSecretKey(CurveKeyPair.generate().secretKey)
        }
        endpoint = try router.bind("tcp://127.0.0.1:*")
    }

    /// Starts an agent named `name` with one slot for the stock worker, heartbeating every 100 ms.
    func startAgent(name: String, logLevel: String = "error") throws -> CollectedChild {
        try CollectedChild("\(buildDirectory())/execnet-agent", [
            "--connect", endpoint, "--name", name, "--slots", "1", "--allow", "\(buildDirectory())/execnet-worker",
            "--heartbeat-interval", "0.1", "--log-level", logLevel,
        ])
    }

    func close() {
        router.close()
        context.terminate()
    }
}
