// Broker gateways against a real execnet-broker and execnet-agent on 127.0.0.1: the seed's
// examples through the broker, remote status, death reports, and the broker's status table.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite struct BrokerTests {
        @Test func aBrokerGatewayRunsTasksLikeAPopenOne() async throws {
            try await withTestGroup(2, kind: .broker) { group in
                let echo = try group[0].remoteExec("echo")
                try await echo.send("through the broker")
                #expect(try await echo.receive(timeout: .seconds(10)) == "through the broker")
                try echo.close()
                let mch = try group.remoteExec("plus-one")
                let queue = try mch.makeReceiveQueue(endmarker: 42)
                try await mch.sendEach(1)
                var items: [Value] = []
                for _ in 0..<4 { items.append(try await queue.get(timeout: .seconds(10)).1) }
                #expect(items.filter { $0 == 2 }.count == 2)
                #expect(items.filter { $0 == 42 }.count == 2)
                let status = try await group[1].remoteStatus(timeout: .seconds(10))
                #expect(status.executingCount == 0)
            }
        }

        @Test func theBrokerStatusListsHostsAndGateways() async throws {
            let fixture = try BrokerFixture.current()
            try await withTestGroup(1, kind: .broker) { group in
                let channel = try group[0].remoteExec("wait-release")
                // The broker counts the channel once the EXEC has passed it (bounded wait).
                let listed = try await pollFor(within: .seconds(10), every: .milliseconds(20)) { () -> ValueDictionary? in
                    guard case .dict(let status) = try await fetchBrokerStatus(fixture.endpoint),
                        (status[.string("channels")]?.intValue ?? 0) >= 1 else { return nil }
                    return status
                }
                guard let status = listed else {
                    Issue.record("the broker's status never counted the channel")
                    return
                }
                guard case .list(let hosts)? = status[.string("hosts")], case .list(let gateways)? = status[.string("gateways")] else {
                    Issue.record("status lacks hosts or gateways: \(status)")
                    return
                }
                #expect(hosts.contains { $0.dictValue?[.string("name")] == "testhost" })
                #expect(gateways.contains { $0.dictValue?[.string("gateway")] == "gw0" })
                #expect((status[.string("channels")]?.intValue ?? 0) >= 1)
                try await channel.send(1)
                _ = try await channel.receive(timeout: .seconds(10))
            }
        }

        @Test func aKilledBrokerWorkerEndsItsChannelsWithTheSignalAndTheHost() async throws {
            try await withTestGroup(2, kind: .broker) { group in
                let doomed = try group[0].remoteExec("pid-then-sleep")
                let survivor = try group[1].remoteExec("wait-release")
                let pid = try #require(try await doomed.receive(timeout: .seconds(10)).intValue)
                let queue = try MultiChannel([doomed]).makeReceiveQueue(endmarker: "ended")
                let killedAt = ContinuousClock.now
                kill(Int32(pid), SIGKILL)
                #expect(try await queue.get(timeout: .seconds(3)).1 == "ended")
                #expect(killedAt.duration(to: .now) < .seconds(1))
                do {
                    try await doomed.waitClose(timeout: .seconds(1))
                    Issue.record("expected endOfChannel")
                } catch let error as ExecnetError {
                    #expect(error.code == .endOfChannel)
                    #expect(error.peerEnd?.exit == .signaled(SIGKILL))
                    #expect(error.peerEnd?.reason.contains("testhost") == true)
                }
                try await survivor.send("alive")
                #expect(try await survivor.receive(timeout: .seconds(10)) == "alive")
            }
        }

        @Test func anUnknownHostFailsTheSpawnWithATypedError() async throws {
            let group = try Group()
            await expectExecnetError(.spawnFailed) {
                try await group.makeGateway(try testWorkerSpec(.broker, "//host=nosuchhost"), startupTimeout: .seconds(10))
            }
            await expectExecnetError(.spawnFailed) {
                try await group.makeGateway("broker=\(try BrokerFixture.current().endpoint)//worker=/bin/true", startupTimeout: .seconds(10))
            }
            await group.terminate(timeout: .seconds(1))
        }

        @Test func theAgentsAllowListComparesResolvedPaths() async throws {
            let fixture = try BrokerFixture.current()
            var template = Array("/tmp/execnet-allow-XXXXXX".utf8CString)
            guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
                throw ExecnetError(.transport, "mkdtemp failed")
            }
            let directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            defer {
                unlink("\(directory)/linked-worker")
                unlink("\(directory)/linked-true")
                rmdir(directory)
            }
            #expect(symlink("\(buildDirectory())/ExecnetTestWorker", "\(directory)/linked-worker") == 0)
            #expect(symlink("/bin/true", "\(directory)/linked-true") == 0)
            let group = try Group()
            // Another name for an allowed file is allowed (and the resolved file is what runs).
            let gateway = try await group.makeGateway("broker=\(fixture.endpoint)//worker=\(directory)/linked-worker",
                                                      startupTimeout: .seconds(10))
            let echo = try gateway.remoteExec("echo")
            try await echo.send("linked")
            #expect(try await echo.receive(timeout: .seconds(10)) == "linked")
            try echo.close()
            // A link to a file that is not allowed is refused, and so is a path that does not exist.
            await expectExecnetError(.spawnFailed) {
                try await group.makeGateway("broker=\(fixture.endpoint)//worker=\(directory)/linked-true", startupTimeout: .seconds(10))
            }
            await expectExecnetError(.spawnFailed) {
                try await group.makeGateway("broker=\(fixture.endpoint)//worker=\(directory)/missing", startupTimeout: .seconds(10))
            }
            let pids = group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(2))
            #expect(await waitUntilGone(pids))
        }

        @Test func aGroupBoundToABrokerMakesItsGatewaysThere() async throws {
            let fixture = try BrokerFixture.current()
            let worker = "\(buildDirectory())/ExecnetTestWorker"
            let group = try await Group(["worker=\(worker)", "worker=\(worker)//host=testhost", testWorkerSpec()],
                                        broker: BrokerBinding(endpoint: fixture.endpoint))
            #expect(group.gateways.map(\.spec.type) == ["broker", "broker", "popen"])
            let values = try await group.remoteExec("send", 5).receiveEach(timeout: .seconds(10))
            #expect(values == [5, 5, 5])
            let pids = group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(2))
            #expect(pids.count == 3)
            #expect(await waitUntilGone(pids))
        }

        @Test func anOversizeSendFailsBeforeSending() async throws {
            try await withTestGroup(1, kind: .broker) { group in
                let echo = try group[0].remoteExec("echo")
                await expectExecnetError(.messageTooLarge) {
                    try await echo.send(.bytes([UInt8](repeating: 7, count: defaultMaxMessageSize + 1)))
                }
                try await echo.send("fine")
                #expect(try await echo.receive(timeout: .seconds(10)) == "fine")
                try echo.close()
            }
        }
    }
}
