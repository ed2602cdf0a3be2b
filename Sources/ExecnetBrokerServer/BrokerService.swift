// A broker as a swift-service-lifecycle Service, so a program can embed one beside its other
// services and shut it down gracefully with them. execnet-broker runs exactly this.

import ExecnetCore
import ServiceLifecycle
import UnixSignals

/// A broker run as a swift-service-lifecycle `Service`.
///
/// `run()` starts a ``BrokerServer``, reports it through `events`, and serves until the service
/// group shuts down gracefully (or the task is cancelled); it then drains the broker with
/// ``BrokerServer/shutdown()`` (workers are asked to exit, within the configuration's grace
/// period) and returns.
///
/// ```swift
/// let broker = BrokerService(configuration: BrokerConfiguration(binds: ["tcp://127.0.0.1:5555"]))
/// let group = ServiceGroup(configuration: .init(services: [.init(service: broker)],
///                                               gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()
/// ```
public struct BrokerService: Service {
    /// What the service tells its owner while it runs.
    public enum Event: Sendable {
        /// The broker is bound and serving (its endpoints are resolved).
        case serving(BrokerServer)
        /// Graceful shutdown began: the broker refuses new work and drains.
        case shuttingDown
    }

    /// The configuration the broker runs with.
    public let configuration: BrokerConfiguration
    /// An authorized-keys file reloaded on SIGHUP (`nil`: no reloads).
    public let authorizedKeysFile: String?
    private let events: @Sendable (Event) -> Void

    /// Creates the service; nothing starts before `run()`.
    ///
    /// - Parameters:
    ///   - configuration: Binds, liveness, limits, keys.
    ///   - authorizedKeysFile: Reloaded on SIGHUP when set (a CURVE broker's `authorized_keys`);
    ///     a file that fails to load keeps the keys in force and is logged.
    ///   - events: Called when the broker serves and when it begins to shut down.
    public init(configuration: BrokerConfiguration, authorizedKeysFile: String? = nil,
                events: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.configuration = configuration
        self.authorizedKeysFile = authorizedKeysFile
        self.events = events
    }

    /// Runs the broker until graceful shutdown or cancellation, then drains it.
    ///
    /// - Throws: What ``BrokerServer/init(configuration:)`` throws (bad settings, a failed bind).
    public func run() async throws {
        let broker = try BrokerServer(configuration: configuration)
        let reloads = Task { [configuration, authorizedKeysFile] in
            guard let authorizedKeysFile else { return }
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                do {
                    broker.reloadAuthorizedKeys(try AuthorizedKeys.load(authorizedKeysFile))
                } catch {
                    configuration.logger.error("SIGHUP: kept the current keys: \(error)")
                }
            }
        }
        defer { reloads.cancel() }
        events(.serving(broker))
        // Returns on graceful shutdown; throws on cancellation, which ends the broker the same way.
        try? await gracefulShutdown()
        events(.shuttingDown)
        configuration.logger.info("graceful shutdown")
        await broker.shutdown()
    }
}
