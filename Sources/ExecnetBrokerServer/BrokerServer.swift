// The public face of a broker: start it on its own I/O thread, read the endpoints it bound, and
// shut it down gracefully (ask workers to exit, wait a bounded time, stop). execnet-broker wraps
// this in a swift-service-lifecycle Service.

import ExecnetCore
import ExecnetValue
import Logging
import ZeroMQ

/// A running broker: routes frames between client programs, host agents and workers.
///
/// ```swift
/// let broker = try BrokerServer(configuration: BrokerConfiguration(binds: ["tcp://127.0.0.1:*"]))
/// print(broker.endpoints)   // ["tcp://127.0.0.1:40123"]
/// await broker.shutdown()
/// ```
public final class BrokerServer: Sendable {
    private let io: IOThread<Broker>
    private let shared: BrokerShared
    private let context: ZMQContext
    /// The configuration it runs with.
    public let configuration: BrokerConfiguration

    /// Starts a broker and returns once it is bound.
    ///
    /// - Parameter configuration: Binds, liveness, size limit, keys.
    /// - Throws: ``ExecnetError`` `invalidSpec` (no CURVE on a non-loopback bind, bad settings) or
    ///   `transport` (a bind failed).
    public init(configuration: BrokerConfiguration) throws {
        try configuration.validate()
        let shared = BrokerShared()
        let context = try ZMQContext()
        self.shared = shared
        self.context = context
        self.configuration = configuration
        io = try IOThread(name: "execnet-broker") {
            Broker(configuration: configuration, context: context, shared: shared)
        }
    }

    /// The endpoints the broker is bound to, with ports resolved (`tcp://127.0.0.1:*` becomes a real port).
    public var endpoints: [String] { shared.endpoints.withLock { $0 } }

    /// Shuts down gracefully: refuses new work, asks every worker to exit, waits for them (at most
    /// the configuration's grace period), then stops the I/O thread. Idempotent.
    ///
    /// The wait ends on the event (the last worker gone, or the grace period's end on the broker's
    /// own clock); cancelling the calling task ends it at once (stop now).
    public func shutdown() async {
        let deadline = ContinuousClock.now.advanced(by: configuration.shutdownGracePeriod)
        await shared.waitForDrain { io.submit(.beginShutdown(deadline: deadline)) }
        await stopThread()
    }

    /// The broker's full status (what a `status` key reads), as of its last liveness tick.
    ///
    /// The broker builds it on its I/O thread only while it is read: the first call returns
    /// `nil` and asks for it, and it is then published every tick (at most 250 ms apart) until
    /// nobody has read it for 5 seconds. For a dashboard that polls.
    ///
    /// - Returns: The last published status, or `nil` if none was published yet.
    public func status() -> BrokerStatus? {
        shared.published.withLock { state in
            state.readUntil = .now.advanced(by: Broker.statusReadersLinger)
            return state.status
        }
    }

    /// Replaces the authorized keys and their roles without a restart (for example on SIGHUP).
    ///
    /// New connections are checked against the new list at once. Registered clients and agents
    /// whose key is gone or lost its role are dropped (their workers are killed); an agent name
    /// whose key is no longer an agent key may be registered by another agent key.
    ///
    /// - Parameter keys: The new list; ignored by a broker without CURVE.
    public func reloadAuthorizedKeys(_ keys: AuthorizedKeys) {
        _ = io.submit(.reloadKeys(keys))
    }

    /// Stops at once: peers' gateways end when their heartbeats expire.
    public func stop() async {
        await stopThread()
    }

    private func stopThread() async {
        await io.stopAndWait()
    }
}
