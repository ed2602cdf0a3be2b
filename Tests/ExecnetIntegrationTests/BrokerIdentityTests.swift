// Two clients that do not trust each other on one CURVE broker: the second tries to pose as an
// agent, take an agent's name, use an agent key as a client, take over the first's worker routing
// id, read the first's status and exceed its quota. Each attempt fails with a clear answer, and
// the first client's work completes intact. Real broker and agent processes, raw ZeroMQ peers.

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
    @Suite(.serialized) struct BrokerIdentityTests {
        /// Keys for a broker, two clients, two agents and a status reader, and the roles file.
        struct Keys {
            let directory: String
            let broker: CurveKeyPair
            let clientA: CurveKeyPair
            let clientB: CurveKeyPair
            let agent: CurveKeyPair
            let otherAgent: CurveKeyPair
            let status: CurveKeyPair

            static let names = ["broker", "clientA", "clientB", "agent", "otherAgent", "status"]

            init() throws {
                var template = Array("/tmp/execnet-roles-XXXXXX".utf8CString)
                guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
                    throw ExecnetError(.transport, "mkdtemp failed")
                }
                directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                broker = try .generate()
                clientA = try .generate()
                clientB = try .generate()
                agent = try .generate()
                otherAgent = try .generate()
                status = try .generate()
                for (name, pair) in zip(Self.names, [broker, clientA, clientB, agent, otherAgent, status]) {
                    try pair.write(secretPath: "\(directory)/\(name).key", publicPath: "\(directory)/\(name).pub")
                }
                try writeRoles("""
                    # roles
                    client \(clientA.publicKey) alice
                    client \(clientB.publicKey) bob
                    agent \(agent.publicKey) host one
                    agent \(otherAgent.publicKey) host two
                    status \(status.publicKey) monitoring

                    """)
            }

            func writeRoles(_ text: String) throws {
                try writeTextFile("\(directory)/authorized_keys", text, mode: 0o644, overwrite: true)
            }

            func client(_ pair: CurveKeyPair) -> CurveClientKeys { CurveClientKeys(serverKey: broker.publicKey, keyPair: pair) }

            /// A broker spec for the test worker with this key.
            func spec(_ endpoint: String, _ name: String, _ extra: String = "") -> String {
                "broker=\(endpoint)//worker=\(buildDirectory())/ExecnetTestWorker//serverkey=\(directory)/broker.pub//secretkey=\(directory)/\(name).key" + extra
            }

            func remove() {
                for name in Self.names {
                    unlink("\(directory)/\(name).key")
                    unlink("\(directory)/\(name).pub")
                }
                unlink("\(directory)/authorized_keys")
                rmdir(directory)
            }
        }

        /// A CURVE broker (1 s × 5 liveness, so a test's steps are never raced by an expiry) and one
        /// agent named `securehost` with the agent key.
        struct SecureBroker {
            let keys: Keys
            let broker: ChildProcess
            let agent: ChildProcess
            let endpoint: String

            init(_ extra: [String] = [], agent agentExtra: (Keys) -> [String] = { _ in [] }) async throws {
                keys = try Keys()
                let dir = keys.directory
                let (broker, ready) = try await startChild("\(buildDirectory())/execnet-broker", [
                    "serve", "--bind", "tcp://127.0.0.1:*", "--heartbeat-interval", "1", "--liveness", "5", "--log-level", "error",
                    "--secret-key", "\(dir)/broker.key", "--authorized-keys", "\(dir)/authorized_keys",
                ] + extra)
                guard ready.hasPrefix("execnet-broker: listening on "), let endpoint = ready.split(separator: " ").last else {
                    stopChild(broker)
                    throw ExecnetError(.transport, "the broker did not start: '\(ready)'")
                }
                self.broker = broker
                self.endpoint = String(endpoint)
                agent = try await startAgent(self.endpoint, name: "securehost",
                                       ["--server-key", "\(dir)/broker.pub", "--secret-key", "\(dir)/agent.key"] + agentExtra(keys),
                                       statusKeys: keys.client(keys.status))
            }

            func stop() {
                stopChild(agent)
                stopChild(broker)
                keys.remove()
            }

            /// The full status, read with the status key.
            func status() async throws -> ValueDictionary {
                try #require(try await fetchBrokerStatus(endpoint, keys: keys.client(keys.status)).dictValue)
            }

            /// How many hosts of this name the broker lists.
            func hostCount(_ name: String) async throws -> Int {
                guard case .list(let hosts)? = try await status()[.string("hosts")] else { return 0 }
                return hosts.filter { $0.dictValue?[.string("name")] == .string(name) }.count
            }
        }

        /// A raw CURVE DEALER at the broker.
        struct RawCurvePeer {
            let context: ZMQContext
            let socket: ZMQSocket

            init(_ endpoint: String, keys: CurveClientKeys, routingID: [UInt8]? = nil) throws {
                context = try ZMQContext()
                socket = try ZMQSocket(context: context, type: .dealer)
                try socket.setLinger(milliseconds: 0)
                if let routingID { try socket.setRoutingID(routingID) }
                try keys.apply(to: socket)
                try socket.connect(endpoint)
            }

            /// The next message within `timeout`, or `nil`.
            func receive(timeout: Duration = .seconds(5)) async throws -> [[UInt8]]? {
                let deadline = ContinuousClock.now.advanced(by: timeout)
                while ContinuousClock.now < deadline {
                    if let frames = try socket.receive(dontWait: true) { return frames }
                    try await Task.sleep(for: .milliseconds(10))
                }
                return nil
            }

            func close() {
                socket.close()
                context.terminate()
            }
        }

        /// The first client's gateway runs a task end to end.
        static func expectWorks(_ gateway: Gateway, _ value: Value) async throws {
            let echo = try gateway.remoteExec("echo")
            try await echo.send(value)
            #expect(try await echo.receive(timeout: .seconds(10)) == value)
            try echo.close()
        }

        static func agentHello(name: String) -> [[UInt8]] {
            var hello = ControlPayload()
            hello["protocol"] = .int(wireProtocolVersion)
            hello["name"] = .string(name)
            hello["slots"] = .int(100)
            return WireMessage(channelID: 0, type: .agentHello, payload: hello.encoded).frames
        }

        @Test func aClientKeyCannotRegisterAsAnAgentNorTakeAnAgentsName() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let keys = setup.keys
            let group = try Group()
            let first = try await group.makeGateway(keys.spec(setup.endpoint, "clientA", "//host=securehost"), startupTimeout: .seconds(10))
            try await Self.expectWorks(first, "before")
            // The second client announces a fake agent, once with a new name, once with the real one.
            let fake = try RawCurvePeer(setup.endpoint, keys: keys.client(keys.clientB))
            defer { fake.close() }
            for name in ["fakehost", "securehost"] {
                try fake.socket.send(Self.agentHello(name: name))
                let answer = try #require(try await fake.receive())
                let message = try WireMessage.parse(answer)
                #expect(message.type == .spawnFailed)
                #expect(ControlPayload(decoding: message.payload)?.string("reason")?.contains("may not register as an agent") == true)
            }
            #expect(try await setup.hostCount("fakehost") == 0)
            #expect(try await setup.hostCount("securehost") == 1)
            // Another agent key may not take the name the first agent key registered.
            let rival = try RawCurvePeer(setup.endpoint, keys: keys.client(keys.otherAgent))
            defer { rival.close() }
            try rival.socket.send(Self.agentHello(name: "securehost"))
            let answer = try #require(try await rival.receive())
            let refusal = try WireMessage.parse(answer)
            #expect(refusal.type == .spawnFailed)
            #expect(ControlPayload(decoding: refusal.payload)?.string("reason")?.contains("belongs to another key") == true)
            #expect(try await setup.hostCount("securehost") == 1)
            // The first client's SPAWNs all go to the real agent, and its work completes.
            for _ in 0..<3 {
                let gateway = try await group.makeGateway(keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
                try await Self.expectWorks(gateway, "after")
            }
            try await Self.expectWorks(first, "after")
            #expect(fake.socket.receiveOrNil() == nil)
            await group.terminate(timeout: .seconds(5))
        }

        @Test func anAgentKeyCannotActAsAClient() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let group = try Group()
            let error = await #expect(throws: ExecnetError.self) {
                try await group.makeGateway(setup.keys.spec(setup.endpoint, "agent"), startupTimeout: .seconds(10))
            }
            #expect(error?.code == .spawnFailed)
            #expect(error?.message.contains("may not act as a client") == true)
            let first = try await group.makeGateway(setup.keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
            try await Self.expectWorks(first, 1)
            await group.terminate(timeout: .seconds(5))
        }

        /// The second client connects with its own key and the routing id of the first client's
        /// worker, injects DATA and CLOSE on the first's channel, and waits for the first's data.
        @Test func anotherKeyCannotTakeOverAWorkersRoutingID() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let keys = setup.keys
            let group = try Group()
            let first = try await group.makeGateway(keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
            let echo = try first.remoteExec("echo")
            try await echo.send(0)
            #expect(try await echo.receive(timeout: .seconds(10)) == 0)
            let thief = try RawCurvePeer(setup.endpoint, keys: keys.client(keys.clientB), routingID: first.routingID)
            defer { thief.close() }
            for frames in [
                WireMessage(channelID: echo.id, type: .data, payload: encodePlain(.string("injected"))).frames,
                WireMessage(channelID: echo.id, type: .close, payload: []).frames,
                WireMessage(channelID: 0, type: .heartbeat, payload: []).frames,
            ] {
                try thief.socket.send(frames)
            }
            for index in 1...20 {
                try await echo.send(.int(Int64(index)))
                #expect(try await echo.receive(timeout: .seconds(10)) == .int(Int64(index)))
            }
            #expect(try await thief.receive(timeout: .milliseconds(500)) == nil)
            try echo.close()
            try await Self.expectWorks(first, "intact")
            await group.terminate(timeout: .seconds(5))
        }

        /// A client's routing id stays bound to its key after it disconnects: another key reusing
        /// it before the broker forgets it is not that client.
        @Test func aClientsRoutingIDIsBoundToItsKey() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let keys = setup.keys
            let routingID = Array("c.stolen.1".utf8)
            var hello = ControlPayload()
            hello["protocol"] = .int(wireProtocolVersion)
            let owner = try RawCurvePeer(setup.endpoint, keys: keys.client(keys.clientA), routingID: routingID)
            try owner.socket.send([[]] + WireMessage(channelID: 0, type: .clientHello, payload: hello.encoded).frames)
            let welcome = try #require(try await owner.receive())
            #expect(welcome.count == 4 && (try? WireMessage.parse(welcome.dropFirst()))?.type == .welcome)
            owner.close()
            // The same routing id with the second client's key asks for a gateway as that client.
            let thief = try RawCurvePeer(setup.endpoint, keys: keys.client(keys.clientB), routingID: routingID)
            defer { thief.close() }
            var spawn = ControlPayload()
            spawn["address"] = .bytes(Array("w.stolen.1".utf8))
            spawn["gateway"] = .string("stolen")
            spawn["worker"] = .string("\(buildDirectory())/ExecnetTestWorker")
            try thief.socket.send([[]] + WireMessage(channelID: 0, type: .spawn, payload: spawn.encoded).frames)
            #expect(try await thief.receive(timeout: .seconds(1)) == nil)
            guard case .list(let gateways)? = try await setup.status()[.string("gateways")] else {
                Issue.record("no gateways in the status")
                return
            }
            #expect(gateways.isEmpty)
        }

        @Test func aClientReadsOnlyItsOwnGatewaysAndAnAgentKeyReadsOnlyTheHosts() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let keys = setup.keys
            let group = try Group()
            let first = try await group.makeGateway(keys.spec(setup.endpoint, "clientA", "//id=alice-gw"), startupTimeout: .seconds(10))
            func gatewayIDs(_ status: Value) -> [Value] {
                guard case .list(let gateways)? = status.dictValue?[.string("gateways")] else { return [] }
                return gateways.compactMap { $0.dictValue?[.string("gateway")] }
            }
            #expect(gatewayIDs(try await fetchBrokerStatus(setup.endpoint, keys: keys.client(keys.clientA))) == ["alice-gw"])
            let other = try await fetchBrokerStatus(setup.endpoint, keys: keys.client(keys.clientB))
            #expect(gatewayIDs(other).isEmpty)
            #expect(other.dictValue?[.string("workers")] == .int(0))
            #expect(gatewayIDs(.dict(try await setup.status())) == ["alice-gw"])
            let agents = try await fetchBrokerStatus(setup.endpoint, keys: keys.client(keys.agent))
            #expect(gatewayIDs(agents).isEmpty)
            let agentKeys = keys.client(keys.agent)
            #expect(try await offPool { brokerLists(host: "securehost", setup.endpoint, keys: agentKeys) })
            try await Self.expectWorks(first, "mine")
            await group.terminate(timeout: .seconds(5))
        }

        @Test func theGatewayQuotaRefusesTheExtraGatewayWithATypedError() async throws {
            let setup = try await SecureBroker(["--max-gateways-per-client", "2"])
            defer { setup.stop() }
            let keys = setup.keys
            let group = try Group()
            let first = try await group.makeGateway(keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
            let greedy = try Group()
            for _ in 0..<2 { _ = try await greedy.makeGateway(keys.spec(setup.endpoint, "clientB"), startupTimeout: .seconds(10)) }
            let error = await #expect(throws: ExecnetError.self) {
                try await greedy.makeGateway(keys.spec(setup.endpoint, "clientB"), startupTimeout: .seconds(10))
            }
            #expect(error?.code == .spawnFailed)
            #expect(error?.message.contains("quota") == true)
            // The first client still gets its second gateway.
            let second = try await group.makeGateway(keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
            try await Self.expectWorks(first, 1)
            try await Self.expectWorks(second, 2)
            await greedy.terminate(timeout: .seconds(5))
            await group.terminate(timeout: .seconds(5))
        }

        /// A worker's environment holds neither the agent's secret key nor any secret key: it
        /// authenticates with a credential minted for its SPAWN, read from a pipe.
        @Test func aWorkersEnvironmentHoldsNoSecretKey() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let group = try Group()
            let gateway = try await group.makeGateway(setup.keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
            try await Self.expectWorks(gateway, "authenticated")
            let pid = try #require(gateway.pid)
            let environment = try #require(readProcFile("/proc/\(pid)/environ"))
            #expect(!environment.contains(setup.keys.agent.secretKey))
            #expect(!environment.contains("SECRET_KEY"))
            #expect(environment.contains("EXECNET_CREDENTIAL_FD="))
            await group.terminate(timeout: .seconds(5))
        }

        /// A root agent runs one client key's workers as the user mapped to it, and the others'
        /// as itself: the first client's tasks cannot read the second's processes as the same uid.
        @Test(.enabled(if: getuid() == 0, "needs root to switch users"))
        func aRootAgentRunsAClientKeysWorkersAsItsUser() async throws {
            let setup = try await SecureBroker(agent: { ["--client-user", "\($0.directory)/clientA.pub=nobody"] })
            defer { setup.stop() }
            let keys = setup.keys
            let nobody = try WorkerUser.named("nobody")
            let group = try Group()
            let mapped = try await group.makeGateway(keys.spec(setup.endpoint, "clientA"), startupTimeout: .seconds(10))
            let unmapped = try await group.makeGateway(keys.spec(setup.endpoint, "clientB"), startupTimeout: .seconds(10))
            try await Self.expectWorks(mapped, "as nobody")
            try await Self.expectWorks(unmapped, "as the agent")
            func uid(_ gateway: Gateway) throws -> String? {
                let pid = try #require(gateway.pid)
                let status = try #require(readProcFile("/proc/\(pid)/status"))
                return status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?
                    .split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.map(String.init)
            }
            #expect(try uid(mapped) == "\(nobody.uid)")
            #expect(try uid(unmapped) == "0")
            await group.terminate(timeout: .seconds(5))
        }

        /// SIGHUP reloads the roles file: a new key gets in without a restart, and a removed
        /// client key loses its gateways.
        @Test func sighupReloadsTheKeysWithoutARestart() async throws {
            let setup = try await SecureBroker()
            defer { setup.stop() }
            let keys = setup.keys
            let group = try Group()
            let bobs = try Group()
            let bob = try await bobs.makeGateway(keys.spec(setup.endpoint, "clientB"), startupTimeout: .seconds(10))
            let bobsEcho = try bob.remoteExec("echo")
            // otherAgent's key is not a client key yet.
            await expectExecnetError(.spawnFailed) {
                try await group.makeGateway(keys.spec(setup.endpoint, "otherAgent"), startupTimeout: .seconds(10))
            }
            try keys.writeRoles("""
                client \(keys.clientA.publicKey)
                client,agent \(keys.otherAgent.publicKey)
                agent \(keys.agent.publicKey)
                status \(keys.status.publicKey)

                """)
            _ = cexecnetSignal(setup.broker.pidfd, SIGHUP)
            // The reload is asynchronous: retry the new client key within a bound.
            var gateway: Gateway?
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while gateway == nil && ContinuousClock.now < deadline {
                gateway = try? await group.makeGateway(keys.spec(setup.endpoint, "otherAgent"), startupTimeout: .seconds(2))
            }
            let rotated = try #require(gateway)
            try await Self.expectWorks(rotated, "new key")
            // The removed client's channel ends.
            do {
                let item = try await bobsEcho.receive(timeout: .seconds(10))
                Issue.record("the revoked client's channel still delivered \(item)")
            } catch let error as ExecnetError {
                #expect(error.code != .timeout, "the revoked client's channel did not end: \(error)")
            } catch {}
            await bobs.terminate(timeout: .seconds(5))
            await group.terminate(timeout: .seconds(5))
        }
    }
}

extension ZMQSocket {
    /// A waiting message, if any, without waiting.
    func receiveOrNil() -> [[UInt8]]? { (try? receive(dontWait: true)) ?? nil }
}

/// A /proc file's bytes as text (NUL separators kept), or `nil` if unreadable.
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
