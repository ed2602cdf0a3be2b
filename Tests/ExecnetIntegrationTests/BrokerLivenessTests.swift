// Liveness and security through a real broker: frozen workers, killed agents, killed clients and a
// restarted broker are detected within the heartbeat bound (0.2 s × 5 here); CURVE keeps out every
// peer without an authorized key; garbage frames do not stop the broker.

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

extension ProcessTests {
    @Suite struct BrokerLivenessTests {
        @Test func aFrozenWorkerIsDeclaredDeadByHeartbeatAndKilled() async throws {
            try await withTestGroup(2, kind: .broker) { group in
                let frozen = try group[0].remoteExec("wait-release")
                let other = try group[1].remoteExec("wait-release")
                let pid = try #require(group[0].pid)
                let queue = try MultiChannel([frozen]).makeReceiveQueue(endmarker: "lost")
                let stoppedAt = ContinuousClock.now
                kill(pid, SIGSTOP)
                #expect(try await queue.get(timeout: .seconds(5)).1 == "lost")
                #expect(stoppedAt.duration(to: .now) < .seconds(3))
                #expect(group[0].exitStatus == .heartbeatLost)
                // The broker has its agent kill the frozen process.
                #expect(await waitUntilGone([pid], timeout: .seconds(5)))
                try await other.send("fine")
                #expect(try await other.receive(timeout: .seconds(10)) == "fine")
            }
        }

        @Test func aKilledAgentEndsItsGatewaysAndTheRestOfTheGroupKeepsWorking() async throws {
            let fixture = try BrokerFixture.current()
            let agent = try await startAgent(fixture.endpoint, name: "doomedhost")
            defer { stopChild(agent, grace: .milliseconds(10)) }
            let specs = [try testWorkerSpec(.broker, "//host=doomedhost"), try testWorkerSpec(.broker, "//host=testhost")]
            try await withTestGroup(0, specs: specs) { group in
                let doomed = try group[0].remoteExec("wait-release")
                let survivor = try group[1].remoteExec("wait-release")
                let doomedPid = try #require(group[0].pid)
                let queue = try MultiChannel([doomed]).makeReceiveQueue(endmarker: "lost")
                let killedAt = ContinuousClock.now
                kill(agent.pid, SIGKILL)
                #expect(try await queue.get(timeout: .seconds(5)).1 == "lost")
                #expect(killedAt.duration(to: .now) < .seconds(3))
                // A lost peer is the end of the channel (execnet's EOFError), with the cause.
                do {
                    try await doomed.waitClose(timeout: .seconds(1))
                    Issue.record("expected endOfChannel")
                } catch let error as ExecnetError {
                    #expect(error.code == .endOfChannel)
                    let cause = try #require(error.peerEnd)
                    #expect(cause.reason.contains("doomedhost") || cause.exit != nil)
                }
                // The worker died with its agent (parent-death signal).
                #expect(await waitUntilGone([doomedPid], timeout: .seconds(3)))
                try await survivor.send("still here")
                #expect(try await survivor.receive(timeout: .seconds(10)) == "still here")
            }
        }

        @Test func aKilledClientsBrokerWorkersAreKilledAndOtherClientsAreUntouched() async throws {
            // This process holds gw0 on the same broker the whole time: gateway ids of two clients
            // do not collide there.
            try await withTestGroup(1, kind: .broker) { group in
                let mine = try group[0].remoteExec("echo")
                let spec = try testWorkerSpec(.broker)
                let (client, ready) = try await startChild("\(buildDirectory())/ExecnetTestClient", [spec, "echo"])
                let words = ready.split(separator: " ")
                #expect(words.first == "READY")
                let pids = words.dropFirst().compactMap { Int32($0) }
                #expect(pids.count == 2 && pids.allSatisfy(processExists))
                _ = cexecnetSignal(client.pidfd, SIGKILL)
                stopChild(client)
                #expect(await waitUntilGone(pids, timeout: .seconds(3)))
                try await mine.send("mine")
                #expect(try await mine.receive(timeout: .seconds(10)) == "mine")
                try mine.close()
            }
        }

        @Test func aRestartedBrokerEndsGatewaysInFlightAndServesNewOnes() async throws {
            let (broker, endpoint) = try await startBroker()
            let agent = try await startAgent(endpoint, name: "restarthost")
            defer { stopChild(agent) }
            let spec = "broker=\(endpoint)//worker=\(buildDirectory())/ExecnetTestWorker"
            let group = try Group()
            let gateway = try await group.makeGateway(spec, startupTimeout: .seconds(10))
            let channel = try gateway.remoteExec("wait-release")
            let queue = try MultiChannel([channel]).makeReceiveQueue(endmarker: "lost")
            _ = cexecnetSignal(broker.pidfd, SIGKILL)
            stopChild(broker)
            let (restarted, sameEndpoint) = try await startBroker(bind: endpoint)
            defer { stopChild(restarted) }
            #expect(sameEndpoint == endpoint)
            // The gateway in flight ends with a clear error; nothing hangs.
            #expect(try await queue.get(timeout: .seconds(5)).1 == "lost")
            do {
                try await channel.waitClose(timeout: .seconds(1))
                Issue.record("expected endOfChannel")
            } catch let error as ExecnetError {
                #expect(error.code == .endOfChannel)
                #expect(error.peerEnd?.reason.contains("broker") == true)
            }
            // The agent registers again and new gateways work.
            try await eventually(every: .milliseconds(50)) { try await offPool { brokerLists(host: "restarthost", endpoint) } }
            let fresh = try await group.makeGateway(spec, startupTimeout: .seconds(10))
            let echo = try fresh.remoteExec("echo")
            try await echo.send("after restart")
            #expect(try await echo.receive(timeout: .seconds(10)) == "after restart")
            try echo.close()
            let pids = [gateway.pid, fresh.pid].compactMap { $0 }
            await group.terminate(timeout: .seconds(2))
            #expect(pids.count == 2)
            // The worker from before the restart exits on its own (UNKNOWN_PEER or heartbeat expiry).
            #expect(await waitUntilGone(pids, timeout: .seconds(5)))
        }

        @Test func garbageFramesDoNotStopTheBroker() async throws {
            let raw = try RawDealer(try BrokerFixture.current().endpoint)
            let garbage: [[[UInt8]]] = [
                [[1]], [[], [0, 0, 0, 1]], [[], [0, 0, 0, 1], [99], []], [[9, 9], [0, 0, 0, 1], [3], [0xff]],
                [[0, 0, 0, 1], [MessageType.agentHello.rawValue], [0xde, 0xad]], [[], [0, 0, 1], [12], []],
                [[], [0, 0, 0, 0], [MessageType.spawn.rawValue], [0x51]], [[0, 0, 0, 0], [MessageType.workerExited.rawValue], []],
                [[UInt8]](repeating: [1, 2, 3], count: 9),
            ]
            for frames in garbage { try raw.socket.send(frames) }
            raw.close()
            try await expectTheBrokerServes()
        }

        /// A registered client's frames take the broker's forwarding path: malformed ones are dropped
        /// there, and a well-formed one for a gateway the broker does not know is answered with PEER_LOST.
        @Test func garbageFramesFromARegisteredClientAreDropped() async throws {
            let raw = try RawDealer(try BrokerFixture.current().endpoint)
            defer { raw.close() }
            var hello = ControlPayload()
            hello["protocol"] = .int(wireProtocolVersion)
            try raw.socket.send([[]] + WireMessage(channelID: 0, type: .clientHello, payload: hello.encoded).frames)
            #expect(try await raw.receiveAddressed(.welcome, within: .seconds(5)) != nil)
            let gone = Array("w.1.gone".utf8)
            let garbage: [[[UInt8]]] = [
                [gone], [gone, [0, 0, 0, 1]], [gone, [0, 0, 0, 1], [3]], [gone, [0, 0, 1], [3], [0x51]],
                [gone, [0, 0, 0, 1], [99], []], [gone, [0, 0, 0, 1], [3], [0x51], [0x51]],
                [[UInt8]](repeating: [1, 2, 3], count: 9),
            ]
            for frames in garbage { try raw.socket.send(frames) }
            try raw.socket.send([gone] + WireMessage(channelID: 1, type: .data, payload: encodePlain(.int(1))).frames)
            let lost = try #require(try await raw.receiveAddressed(.peerLost, within: .seconds(5)))
            #expect(lost.first == gone)
            try await expectTheBrokerServes()
        }

        /// After a broker restart, a client's first frames may be addressed to a gateway of the old
        /// broker: the answer must tell the client that the client itself is unknown.
        @Test func aStrangerWritingToAGatewayIsToldToRegisterAgain() async throws {
            let raw = try RawDealer(try BrokerFixture.current().endpoint)
            defer { raw.close() }
            let message = WireMessage(channelID: 3, type: .data, payload: encodePlain(.int(1)))
            try raw.socket.send([Array("w.1.gone".utf8)] + message.frames)
            let frames = try #require(try await raw.receiveAddressed(.unknownPeer, within: .seconds(5)))
            #expect(frames.first == [])
        }

        @Test func oneSlowChannelDoesNotStallTheOthers() async throws {
            try await withTestGroup(2, kind: .broker) { group in
                // Nobody reads this one: its sender stops at the credit window.
                let flood = try group[0].remoteExec("count", .int(1_000_000))
                let echo = try group[1].remoteExec("echo")
                let sameWorker = try group[0].remoteExec("echo")
                for index in 0..<200 {
                    try await echo.send(.int(Int64(index)))
                    #expect(try await echo.receive(timeout: .seconds(10)) == .int(Int64(index)))
                    try await sameWorker.send(.int(Int64(index)))
                    #expect(try await sameWorker.receive(timeout: .seconds(10)) == .int(Int64(index)))
                }
                #expect(flood.core.state.withLock { $0.items.count } <= FlowWindow.messages)
                try echo.close()
                try sameWorker.close()
                try flood.close()
            }
        }
    }

    @Suite struct BrokerSecurityTests {
        struct Keys {
            let directory: String
            let broker: CurveKeyPair
            let client: CurveKeyPair
            let agent: CurveKeyPair
            let stranger: CurveKeyPair

            init() throws {
                var template = Array("/tmp/execnet-keys-XXXXXX".utf8CString)
                guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
                    throw ExecnetError(.transport, "mkdtemp failed")
                }
                directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                broker = try .generate()
                client = try .generate()
                agent = try .generate()
                stranger = try .generate()
                try broker.write(secretPath: "\(directory)/broker.key", publicPath: "\(directory)/broker.pub")
                try client.write(secretPath: "\(directory)/client.key", publicPath: "\(directory)/client.pub")
                try agent.write(secretPath: "\(directory)/agent.key", publicPath: "\(directory)/agent.pub")
                try stranger.write(secretPath: "\(directory)/stranger.key", publicPath: "\(directory)/stranger.pub")
                try writeTextFile("\(directory)/authorized_keys", "# the client and its agent\nclient \(client.publicKey)\nagent \(agent.publicKey)\n",
                                  mode: 0o644, overwrite: false)
            }

            func remove() {
                for name in ["broker.key", "broker.pub", "client.key", "client.pub", "agent.key", "agent.pub", "stranger.key", "stranger.pub", "authorized_keys"] {
                    unlink("\(directory)/\(name)")
                }
                rmdir(directory)
            }
        }

        @Test func aNonLoopbackBindWithoutCurveIsRefused() async throws {
            let (child, ready) = try await startChild("\(buildDirectory())/execnet-broker", ["serve", "--bind", "tcp://0.0.0.0:0"])
            stopChild(child)
            #expect(!ready.hasPrefix("execnet-broker: listening"))
            #expect(throws: ExecnetError(.invalidSpec, "")) {
                try BrokerConfiguration(binds: ["tcp://0.0.0.0:5555"]).validate()
            }
            #expect(throws: Never.self) { try BrokerConfiguration(binds: ["tcp://127.0.0.1:5555", "ipc:///tmp/x"]).validate() }
        }

        @Test func onlyAuthorizedKeysCanRegisterRunTasksOrReceive() async throws {
            let keys = try Keys()
            defer { keys.remove() }
            let dir = keys.directory
            let (broker, endpoint) = try await startBroker([
                "--secret-key", "\(dir)/broker.key", "--authorized-keys", "\(dir)/authorized_keys",
            ])
            defer { stopChild(broker) }
            let clientKeys = CurveClientKeys(serverKey: keys.broker.publicKey, keyPair: keys.client)
            // An agent with the authorized key registers; one with an unknown key does not.
            let agent = try await startAgent(endpoint, name: "securehost",
                                       ["--server-key", "\(dir)/broker.pub", "--secret-key", "\(dir)/agent.key"], statusKeys: clientKeys)
            defer { stopChild(agent) }
            let (intruder, _) = try await startChild("\(buildDirectory())/execnet-agent", [
                "--connect", endpoint, "--name", "intruder", "--allow", "\(buildDirectory())/ExecnetTestWorker",
                "--server-key", "\(dir)/broker.pub", "--secret-key", "\(dir)/stranger.key",
            ])
            defer { stopChild(intruder) }
            // The intruder is given time to try: a deliberate window for something that must not
            // happen, not a synchronisation.
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await offPool { !brokerLists(host: "intruder", endpoint, keys: clientKeys) })
            // Status without a key, or with an unknown key, gets no answer (bounded wait).
            await #expect(throws: ExecnetError(.timeout, "")) { try await fetchBrokerStatus(endpoint, timeout: .milliseconds(500)) }
            await #expect(throws: ExecnetError(.timeout, "")) {
                try await fetchBrokerStatus(endpoint, keys: CurveClientKeys(serverKey: keys.broker.publicKey, keyPair: keys.stranger),
                                            timeout: .milliseconds(500))
            }
            // The authorized client runs a task.
            let worker = "\(buildDirectory())/ExecnetTestWorker"
            let good = "broker=\(endpoint)//worker=\(worker)//serverkey=\(dir)/broker.pub//secretkey=\(dir)/client.key"
            let group = try Group()
            let gateway = try await group.makeGateway(good, startupTimeout: .seconds(10))
            let echo = try gateway.remoteExec("echo")
            try await echo.send("secret")
            #expect(try await echo.receive(timeout: .seconds(10)) == "secret")
            try echo.close()
            // No key, or an unknown key: no gateway, no task, nothing received.
            await expectExecnetError(.timeout) {
                try await group.makeGateway("broker=\(endpoint)//worker=\(worker)", startupTimeout: .seconds(1))
            }
            await expectExecnetError(.timeout) {
                try await group.makeGateway(
                    "broker=\(endpoint)//worker=\(worker)//serverkey=\(dir)/broker.pub//secretkey=\(dir)/stranger.key",
                    startupTimeout: .seconds(1))
            }
            // A raw CURVE peer with an unknown key that sends frames receives nothing.
            let context = try ZMQContext()
            let raw = try ZMQSocket(context: context, type: .dealer)
            try raw.setLinger(milliseconds: 0)
            try CurveClientKeys(serverKey: keys.broker.publicKey, keyPair: keys.stranger).apply(to: raw)
            try raw.connect(endpoint)
            try raw.send([[]] + WireMessage(channelID: 0, type: .clientHello, payload: ControlPayload(["protocol": 1]).encoded).frames)
            try raw.send([[]] + WireMessage(channelID: 1, type: .brokerStatus, payload: []).frames)
            var poller = ZMQPoller()
            _ = poller.add(raw, events: .readable)
            #expect(try poller.poll(timeout: .milliseconds(500)) == .timedOut)
            raw.close()
            context.terminate()
            let pids = group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(2))
            #expect(await waitUntilGone(pids))
        }
    }
}

/// The broker still runs a task for a well-behaved client.
private func expectTheBrokerServes() async throws {
    try await withTestGroup(1, kind: .broker) { group in
        let echo = try group[0].remoteExec("echo")
        try await echo.send(1)
        #expect(try await echo.receive(timeout: .seconds(10)) == 1)
        try echo.close()
    }
}
