// What the status (and so the dashboard) says beyond the routing table: the recent deaths with
// their cause, signal or exit status and last stderr lines, each gateway's client label, and the
// channels blocked on credit; a client key sees its own deaths only. Real broker, agents, workers.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The typed status of the broker at `endpoint`, read on a thread of its own.
func fetchTypedStatus(_ endpoint: String, keys: CurveClientKeys? = nil) async throws -> BrokerStatus {
    try await offPool { try BrokerStatusQuery.fetchStatus(endpoint: endpoint, keys: keys) }
}

extension ProcessTests {
    @Suite struct BrokerDashboardStatusTests {
        @Test func aWorkerThatFailsIsAmongTheDeathsWithItsExitStatusAndLastStderrLines() async throws {
            let fixture = try BrokerFixture.current()
            let group = try Group()
            let gateway = try await group.makeGateway(
                "broker=\(fixture.endpoint)//host=testhost//id=dash-stderr//worker=\(buildDirectory())/ExecnetTestWorker")
            let label = try #require(try await fetchTypedStatus(fixture.endpoint).gateways.first { $0.gateway == "dash-stderr" }?.client)
            #expect(label.hasSuffix("pid \(getpid())"), "a client without a key is shown by hostname and pid: \(label)")
            let channel = try gateway.remoteExec("stderr-then-exit", arguments: [3])
            // The client's own error carries the agent's stderr lines too.
            do {
                try await channel.waitClose(timeout: .seconds(10))
                Issue.record("expected endOfChannel")
            } catch let error as ExecnetError {
                #expect(error.peerEnd?.exit == .exited(3))
                #expect(error.peerEnd?.stderr == ["first words", "last words"])
            }
            var death: BrokerStatus.Death?
            _ = try await eventually(within: .seconds(10), every: .milliseconds(50)) {
                death = try await fetchTypedStatus(fixture.endpoint).recentDeaths?.first { $0.gateway == "dash-stderr" }
                return death != nil
            }
            let found = try #require(death)
            #expect(found.exitStatus == 3)
            #expect(found.signal == nil)
            #expect(found.host == "testhost")
            #expect(found.client == label)
            #expect(found.stderr == ["first words", "last words"])
            #expect(found.cause.contains("exited with status 3"))
            await group.terminate(timeout: .seconds(2))
        }

        @Test func aCleanExitIsNotADeath() async throws {
            let fixture = try BrokerFixture.current()
            let group = try Group()
            let gateway = try await group.makeGateway(
                "broker=\(fixture.endpoint)//host=testhost//id=dash-clean//worker=\(buildDirectory())/ExecnetTestWorker")
            gateway.exit()
            #expect(await gateway.join(timeout: .seconds(10)) == .exited(0))
            #expect(try await eventually(within: .seconds(10), every: .milliseconds(50)) {
                try await !fetchTypedStatus(fixture.endpoint).gateways.contains { $0.gateway == "dash-clean" }
            })
            #expect(try await fetchTypedStatus(fixture.endpoint).recentDeaths?.contains { $0.gateway == "dash-clean" } == false)
        }

        @Test func aChannelWhoseReceiverDoesNotReadIsAmongTheCreditStalls() async throws {
            let fixture = try BrokerFixture.current()
            let group = try Group()
            let gateway = try await group.makeGateway(
                "broker=\(fixture.endpoint)//host=testhost//id=dash-stall//worker=\(buildDirectory())/ExecnetTestWorker")
            let before = try await fetchTypedStatus(fixture.endpoint).creditStalls?.started ?? 0
            // The worker sends more than a window's worth of items; the client reads none yet.
            let count = FlowWindow.messages + 100
            let channel = try gateway.remoteExec("count", arguments: [.int(Int64(count))])
            var stalls: BrokerStatus.CreditStalls?
            #expect(try await eventually(within: .seconds(10), every: .milliseconds(50)) {
                stalls = try await fetchTypedStatus(fixture.endpoint).creditStalls
                return stalls?.channels.contains { $0.gateway == "dash-stall" } == true
            })
            #expect(stalls?.channels.first { $0.gateway == "dash-stall" }?.direction == "to_client")
            #expect((stalls?.blocked ?? 0) >= 1)
            #expect((stalls?.started ?? 0) > before)
            for index in 0..<count { #expect(try await channel.receive(timeout: .seconds(10)) == .int(Int64(index))) }
            #expect(try await eventually(within: .seconds(10), every: .milliseconds(50)) {
                try await fetchTypedStatus(fixture.endpoint).creditStalls?.channels.contains { $0.gateway == "dash-stall" } == false
            })
            await group.terminate(timeout: .seconds(2))
        }
    }
}

extension ProcessTests.BrokerIdentityTests {
    @Test func aClientKeySeesOnlyItsOwnDeathsAndGatewaysAreLabelledByTheKeysComment() async throws {
        let setup = try await SecureBroker()
        defer { setup.stop() }
        let keys = setup.keys
        let group = try Group()
        let gateway = try await group.makeGateway(keys.spec(setup.endpoint, "clientA", "//id=alice-dies"), startupTimeout: .seconds(10))
        let everything = keys.client(keys.status)
        let shown = try #require(try await fetchTypedStatus(setup.endpoint, keys: everything).gateways.first { $0.gateway == "alice-dies" })
        // The comment of the key's line, never the key.
        #expect(shown.client == "alice")
        let channel = try gateway.remoteExec("pid-then-sleep")
        let pid = try #require(try await channel.receive(timeout: .seconds(10)).intValue)
        kill(Int32(pid), SIGKILL)
        #expect(try await eventually(within: .seconds(10), every: .milliseconds(50)) {
            try await fetchTypedStatus(setup.endpoint, keys: everything).recentDeaths?.contains { $0.gateway == "alice-dies" } == true
        })
        let death = try #require(try await fetchTypedStatus(setup.endpoint, keys: everything).recentDeaths?.first { $0.gateway == "alice-dies" })
        #expect(death.signal == Int(SIGKILL))
        #expect(death.client == "alice")
        #expect(try await fetchTypedStatus(setup.endpoint, keys: keys.client(keys.clientA)).recentDeaths?.map(\.gateway) == ["alice-dies"])
        let bob = try await fetchTypedStatus(setup.endpoint, keys: keys.client(keys.clientB))
        #expect(bob.recentDeaths == [])
        #expect(bob.creditStalls?.started == nil, "broker-wide counters are for the status role")
        #expect(try await fetchTypedStatus(setup.endpoint, keys: keys.client(keys.agent)).recentDeaths == [])
        await group.terminate(timeout: .seconds(5))
    }
}
