// What a broker is started with: where it binds, its liveness settings, the message size limit,
// and its CURVE keys and allow-list. Validation that does not need sockets lives here.

import ExecnetCore
import Logging

/// A broker's CURVE identity and the public keys it lets in.
public struct BrokerSecurity: Sendable {
    /// The broker's own key pair; clients and agents need its public key.
    public let keyPair: CurveKeyPair
    /// The public keys of clients, agents and workers allowed to connect.
    public let authorizedKeys: AuthorizedKeys

    /// Creates broker security settings.
    ///
    /// - Parameters:
    ///   - keyPair: The broker's key pair.
    ///   - authorizedKeys: The allowed public keys.
    public init(keyPair: CurveKeyPair, authorizedKeys: AuthorizedKeys) {
        self.keyPair = keyPair
        self.authorizedKeys = authorizedKeys
    }
}

/// How a broker runs.
public struct BrokerConfiguration: Sendable {
    /// Endpoints to bind, e.g. `tcp://0.0.0.0:5555` or `tcp://127.0.0.1:*` (the port is chosen).
    public var binds: [String]
    /// Heartbeat interval and liveness (default 1 s × 3).
    public var liveness: LivenessSettings
    /// The largest message frame accepted, in bytes (default 256 MiB).
    public var maxMessageSize: Int
    /// CURVE keys; required when any bind is not loopback.
    public var security: BrokerSecurity?
    /// How long a graceful shutdown waits for workers to exit before it stops anyway.
    public var shutdownGracePeriod: Duration
    /// The most gateways one client key may have at once (one client process without CURVE);
    /// 0 means no limit. Default ``defaultMaxGatewaysPerClient``.
    public var maxGatewaysPerClient: Int
    /// The logger.
    public var logger: Logger
    /// Memory limits (docs/SECURITY.md, "Limits").
    public var limits = BrokerLimits()
    /// How often agents report their host's load (LOAD_REPORT, asked for in the WELCOME to an
    /// agent); `nil`: no reports. Default 5 s; 0.1 s … 1 h.
    public var loadReportInterval: Duration? = .seconds(5)

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - binds: Endpoints to bind.
    ///   - liveness: Heartbeat settings.
    ///   - maxMessageSize: The largest frame accepted, in bytes.
    ///   - security: CURVE keys, or `nil` for loopback-only brokers.
    ///   - shutdownGracePeriod: How long shutdown waits for workers.
    ///   - maxGatewaysPerClient: The most gateways per client key at once (0: no limit).
    ///   - logger: The logger.
    public init(
        binds: [String], liveness: LivenessSettings = .default, maxMessageSize: Int = defaultMaxMessageSize,
        security: BrokerSecurity? = nil, shutdownGracePeriod: Duration = .seconds(5),
        maxGatewaysPerClient: Int = defaultMaxGatewaysPerClient,
        logger: Logger = Logger(label: "execnet.broker")
    ) {
        self.maxGatewaysPerClient = maxGatewaysPerClient
        self.binds = binds
        self.liveness = liveness
        self.maxMessageSize = maxMessageSize
        self.security = security
        self.shutdownGracePeriod = shutdownGracePeriod
        self.logger = logger
    }

    /// Checks the rules that need no sockets: at least one bind, and CURVE for any bind that is
    /// not loopback (or ipc/inproc).
    ///
    /// - Throws: ``ExecnetError`` `invalidSpec` naming the offending bind.
    public func validate() throws {
        guard !binds.isEmpty else { throw ExecnetError(.invalidSpec, "the broker needs at least one --bind") }
        guard maxMessageSize > 0 else { throw ExecnetError(.invalidSpec, "the maximum message size must be positive") }
        guard maxGatewaysPerClient >= 0 else { throw ExecnetError(.invalidSpec, "the gateway quota must not be negative") }
        if let loadReportInterval, !LoadReport.intervalRange.contains(Int64(loadReportInterval.clampedMilliseconds)) {
            throw ExecnetError(.invalidSpec, "the load report interval must be 0.1 s to 1 h")
        }
        if security == nil, let open = binds.first(where: { !isLoopbackEndpoint($0) }) {
            throw ExecnetError(
                .invalidSpec,
                "\(open) is not a loopback address: remote execution over a network requires CURVE (--secret-key and --authorized-keys)")
        }
    }
}

/// The default gateway quota per client key: 64.
public let defaultMaxGatewaysPerClient = 64

/// Whether an endpoint only accepts connections from this machine.
func isLoopbackEndpoint(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    var host = String(endpoint.dropFirst(6))
    if host.hasPrefix("[") {
        host = String(host.dropFirst().prefix { $0 != "]" })
        return host == "::1"
    }
    host = String(host.prefix { $0 != ":" })
    return host == "localhost" || host.hasPrefix("127.")
}
