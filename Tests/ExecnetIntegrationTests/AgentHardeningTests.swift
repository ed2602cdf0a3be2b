// Hardening of the host agent and the broker: an agent whose broker takes nothing says so (its
// sends go through the outbox, never a silent drop); a malformed SPAWN is answered with
// SPAWN_FAILED naming the reason; the broker's graceful shutdown waits on the event, not a poll,
// and a cancelled shutdown stops at once.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
import Logging
import Synchronization
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A raw DEALER registered at the broker as agent `name`; returns it and its WELCOME.
func registerRawAgent(_ endpoint: String, name: String, slots: Int = 1) async throws -> (RawDealer, ControlPayload) {
    let agent = try RawDealer(endpoint)
    var hello = ControlPayload()
    hello["protocol"] = .int(wireProtocolVersion)
    hello["name"] = .string(name)
    hello["slots"] = .int(Int64(slots))
    try agent.socket.send(WireMessage(channelID: 0, type: .agentHello, payload: hello.encoded).frames)
    let welcome = try await agent.receive(within: .seconds(10)) { (try? WireMessage.parse($0))?.type == .welcome }
    let frames = try #require(welcome, "agent \(name) was not welcomed")
    return (agent, ControlPayload(decoding: frames[2]) ?? ControlPayload())
}

/// The broker's typed status, asked from a thread of its own.
func typedBrokerStatus(_ endpoint: String) async throws -> BrokerStatus {
    try await offPool { try BrokerStatusQuery.fetchStatus(endpoint: endpoint, timeout: .seconds(5)) }
}

/// An in-process broker with one raw agent, one raw client and one raw worker (a DEALER speaking
/// for the worker the agent was asked to start), all kept alive by the test's heartbeats.
private struct OneWorkerBroker {
    let server: BrokerServer
    let agent: RawDealer
    let client: RawClient
    let worker: RawDealer
    let address: PeerAddress

    init(grace: Duration) async throws {
        server = try BrokerServer(configuration: BrokerConfiguration(
            binds: ["tcp://127.0.0.1:*"], shutdownGracePeriod: grace, logger: Logger(label: "test.shutdown")))
        let endpoint = try #require(server.endpoints.first)
        (agent, _) = try await registerRawAgent(endpoint, name: "shutdownhost")
        client = try await RawClient(endpoint)
        address = Array("shutdown-worker".utf8)
        var request = ControlPayload()
        request["address"] = .bytes(address)
        request["env"] = .dict([:])
        try client.socket.send([[]] + WireMessage(channelID: 0, type: .spawn, payload: request.encoded).frames)
        let spawn = try await agent.receive(within: .seconds(10)) { (try? WireMessage.parse($0))?.type == .spawn }
        try #require(spawn != nil, "the agent got no SPAWN")
        worker = try RawDealer(endpoint, routingID: address)
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["pid"] = .int(Int64(getpid()))
        try worker.socket.send(WireMessage(channelID: 0, type: .hello, payload: hello.encoded).frames)
        try #require(try await client.receive(.hello, from: address) != nil, "the worker's hello did not reach the client")
    }

    func heartbeats() throws {
        for peer in [agent, worker] {
            _ = try peer.socket.send(WireMessage(channelID: 0, type: .heartbeat, payload: []).frames, dontWait: true)
        }
        try client.heartbeat()
    }

    /// Waits until the broker asks the worker to exit (its shutdown has begun).
    func waitForTerminate() async throws {
        let terminate = try await worker.receive(within: .seconds(10), whileWaiting: heartbeats) {
            (try? WireMessage.parse($0))?.type == .terminate
        }
        try #require(terminate != nil, "the broker did not ask the worker to exit")
    }

    func close() {
        for peer in [agent, worker] { peer.close() }
        client.close()
    }
}

extension ProcessTests {
    @Suite struct AgentHardeningTests {
        @Test func anAgentWhoseBrokerTakesNothingSaysSoInsteadOfDroppingItsMessages() async throws {
            // A CURVE broker the agent, without keys, cannot finish a handshake with: the DEALER's
            // pipe is gone, and every send meets it.
            let broker = try RawAgentBroker(curveServer: true)
            defer { broker.close() }
            let agent = try broker.startAgent(name: "unheardhost", logLevel: "warning")
            defer { stopChild(ChildProcess(pid: agent.pid, pidfd: agent.pidfd)) }
            let said = await agent.wait(.seconds(20)) { $0.stderr.contains("takes no messages now") }
            #expect(said, "the agent dropped its messages silently; its stderr:\n\(agent.stderr)")
            #expect(processExists(agent.pid))
        }

        @Test func aMalformedSpawnIsAnsweredWithSpawnFailedNamingTheReason() async throws {
            let (broker, endpoint) = try await startBroker()
            defer { stopChild(broker) }
            let client = try await RawClient(endpoint)
            defer { client.close() }
            let longAddress = [UInt8](repeating: 0x61, count: 300)
            let cases: [(payload: [UInt8], about: PeerAddress, reason: String)] = [
                (ControlPayload(["gateway": "gw"]).encoded, [], "'address' must be non-empty bytes"),
                (ControlPayload(["address": .bytes([])]).encoded, [], "'address' must be non-empty bytes"),
                (ControlPayload(["address": "text-address"]).encoded, [], "'address' must be non-empty bytes"),
                (encodePlain(.list([.bytes(Array("x".utf8))])), [], "the payload is not a dict"),
                ([0xff, 0x51], [], "the payload is not a dict"),
                (ControlPayload(["address": .bytes(longAddress)]).encoded, longAddress, "'address' must be 1 to 255 bytes"),
                (ControlPayload(["address": .bytes([0, 1])]).encoded, [0, 1], "'address' must be 1 to 255 bytes"),
                (ControlPayload(["address": .bytes(Array("m1".utf8)), "host": .int(3)]).encoded, Array("m1".utf8), "'host' must be text"),
                (ControlPayload(["address": .bytes(Array("m2".utf8)), "nice": "5"]).encoded, Array("m2".utf8), "'nice' must be an int"),
                (ControlPayload(["address": .bytes(Array("m3".utf8)), "env": .list([])]).encoded, Array("m3".utf8), "'env' must be a dict"),
            ]
            for (payload, about, reason) in cases {
                try client.socket.send([[]] + WireMessage(channelID: 0, type: .spawn, payload: payload).frames)
                let answer = try await client.receive(.spawnFailed, from: about)
                let frames = try #require(answer, "no SPAWN_FAILED for a SPAWN whose \(reason)")
                let text = decodeString(frames[3]) ?? ""
                #expect(text.hasPrefix("malformed SPAWN: ") && text.contains(reason), "answer: \(text)")
            }
            #expect(kill(broker.pid, 0) == 0)
        }

        @Test func aGatewayWhoseAddressIsTooLongFailsAtOnceWithSpawnFailed() async throws {
            // The gateway id goes into the worker's address, which a routing id limits to 255 bytes.
            let spec = try testWorkerSpec(.broker, "//id=" + String(repeating: "g", count: 300))
            let group = try Group()
            await expectExecnetError(.spawnFailed) { try await group.makeGateway(spec, startupTimeout: .seconds(60)) }
            do {
                _ = try await group.makeGateway(spec, startupTimeout: .seconds(60))
            } catch let error as ExecnetError {
                #expect(error.message.contains("malformed SPAWN"), "\(error)")
            }
            await group.terminate(timeout: .seconds(2))
        }

        @Test func aCancelledShutdownStopsAtOnceInsteadOfWaitingOutTheGracePeriod() async throws {
            let broker = try await OneWorkerBroker(grace: .seconds(3600))
            defer { broker.close() }
            let server = broker.server
            let done = Atomic<Bool>(false)
            let shutdown = Task {
                await server.shutdown()
                done.store(true, ordering: .releasing)
            }
            try await broker.waitForTerminate()
            // The worker never exits; a graceful shutdown would wait an hour. Cancellation means now.
            shutdown.cancel()
            let stopped = try await eventually(within: .seconds(20)) {
                try broker.heartbeats()
                return done.load(ordering: .acquiring)
            }
            #expect(stopped, "a cancelled shutdown kept waiting for the grace period")
        }

        @Test func aShutdownEndsWhenTheLastWorkerHasGoneNotAtTheEndOfItsGracePeriod() async throws {
            let broker = try await OneWorkerBroker(grace: .seconds(3600))
            defer { broker.close() }
            let server = broker.server
            let done = Atomic<Bool>(false)
            let shutdown = Task {
                await server.shutdown()
                done.store(true, ordering: .releasing)
            }
            defer { shutdown.cancel() }
            try await broker.waitForTerminate()
            // The agent reports the worker's exit: no worker is left.
            var exited = ControlPayload()
            exited["address"] = .bytes(broker.address)
            exited["exited"] = .int(0)
            try broker.agent.socket.send(WireMessage(channelID: 0, type: .workerExited, payload: exited.encoded).frames)
            let stopped = try await eventually(within: .seconds(20)) {
                try broker.heartbeats()
                return done.load(ordering: .acquiring)
            }
            #expect(stopped, "the shutdown did not end when the last worker had gone")
        }
    }
}
