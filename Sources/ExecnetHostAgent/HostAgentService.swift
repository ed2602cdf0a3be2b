// A host agent as a swift-service-lifecycle Service, so a program can embed one and shut it down
// gracefully with its other services. execnet-agent runs exactly this.

import ServiceLifecycle

/// A host agent run as a swift-service-lifecycle `Service`.
///
/// `run()` starts a ``HostAgent`` (which registers with its broker and keeps registering after
/// the broker comes back), reports it through `events`, and runs until the service group shuts
/// down gracefully (or the task is cancelled); it then stops the agent, which kills and reaps the
/// workers it runs, and returns.
public struct HostAgentService: Service {
    /// What the service tells its owner while it runs.
    public enum Event: Sendable {
        /// The agent runs (it may not be registered yet: see ``HostAgent/isRegistered``).
        case running(HostAgent)
        /// Graceful shutdown began: the agent is about to stop its workers and leave.
        case stopping
    }

    /// The configuration the agent runs with.
    public let configuration: AgentConfiguration
    private let events: @Sendable (Event) -> Void

    /// Creates the service; nothing starts before `run()`.
    ///
    /// - Parameters:
    ///   - configuration: The broker to join, the agent's name, slots, allowed workers, keys.
    ///   - events: Called when the agent runs and when it begins to stop.
    public init(configuration: AgentConfiguration, events: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.configuration = configuration
        self.events = events
    }

    /// Runs the agent until graceful shutdown or cancellation, then stops it.
    ///
    /// - Throws: What ``HostAgent/init(configuration:)`` throws (bad settings, keys, endpoint).
    public func run() async throws {
        let agent = try HostAgent(configuration: configuration)
        events(.running(agent))
        try? await gracefulShutdown()
        events(.stopping)
        await agent.stop()
    }
}
