// A program embeds a broker and a host agent as swift-service-lifecycle Services (issue 12): a
// client runs a task through them, and a graceful shutdown of the service group ends both, with
// the agent's worker, within a bound.

import Execnet
import ExecnetBrokerServer
import ExecnetHostAgent
import Logging
import ServiceLifecycle
import Synchronization
import Testing

extension ProcessTests {
    @Suite struct EmbeddedServicesTests {
        @Test func anEmbeddedBrokerAndAgentServeAClientAndShutDownGracefully() async throws {
            let logger = Logger(label: "test.embedded")
            let endpoint = Mutex<String?>(nil)
            let agentRegistered = Mutex<HostAgent?>(nil)
            let broker = BrokerService(configuration: BrokerConfiguration(
                binds: ["tcp://127.0.0.1:*"], shutdownGracePeriod: .seconds(2), logger: logger)) { event in
                if case .serving(let server) = event { endpoint.withLock { $0 = server.endpoints.first } }
            }
            let brokerGroup = ServiceGroup(configuration: .init(services: [.init(service: broker)], logger: logger))
            let brokerRun = Task { try await brokerGroup.run() }
            let bound = try #require(try await pollFor(within: .seconds(10)) { endpoint.withLock { $0 } })

            let agent = HostAgentService(configuration: AgentConfiguration(
                broker: bound, name: "embeddedhost", slots: 2,
                allowedWorkers: ["\(buildDirectory())/ExecnetTestWorker"], logger: logger)) { event in
                if case .running(let running) = event { agentRegistered.withLock { $0 = running } }
            }
            let agentGroup = ServiceGroup(configuration: .init(services: [.init(service: agent)], logger: logger))
            let agentRun = Task { try await agentGroup.run() }
            #expect(try await eventually(within: .seconds(10)) { agentRegistered.withLock { $0?.isRegistered ?? false } })

            let group = try await Group(["broker=\(bound)//host=embeddedhost"])
            let gateway = try #require(group.gateways.first)
            let echo = try gateway.remoteExec("echo")
            try await echo.send("through the embedded broker")
            #expect(try await echo.receive(timeout: .seconds(10)) == "through the embedded broker")
            let pid = try #require(gateway.pid)

            // Graceful shutdown of the agent's group: run() returns and its worker is gone.
            await agentGroup.triggerGracefulShutdown()
            try await withTimeout(.seconds(10)) { try await agentRun.value }
            #expect(await waitUntilGone([pid]))
            await group.terminate(timeout: .seconds(2))

            // And the broker's: run() returns within its grace period and a bound.
            await brokerGroup.triggerGracefulShutdown()
            try await withTimeout(.seconds(10)) { try await brokerRun.value }
        }
    }
}

/// Awaits `body`, failing the test if it takes longer than `bound` (the body is cancelled then).
private func withTimeout(_ bound: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { tasks in
        tasks.addTask { try await body(); return true }
        tasks.addTask { try await Task.sleep(for: bound); return false }
        let finished = try await tasks.next() ?? false
        tasks.cancelAll()
        #expect(finished, "did not return within \(bound)")
    }
}
