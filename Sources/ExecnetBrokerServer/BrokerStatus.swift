// The broker's status as a typed value: what BROKER_STATUS answers (a dict on the wire, see
// docs/PROTOCOL.md), decoded with ValueDecoder. `execnet-broker status` prints it as a table or,
// through Codable, as JSON.

import ExecnetCore
import ExecnetValue

/// A running broker's status: hosts, gateways, channels, message counts and rates, memory.
public struct BrokerStatus: Codable, Sendable, Equatable {
    /// A registered host agent.
    public struct Host: Codable, Sendable, Equatable {
        /// The agent's name (what `host=NAME` asks for).
        public var name: String
        /// The machine's hostname.
        public var hostname: String
        /// Workers it may run at once.
        public var slots: Int
        /// Workers it runs now.
        public var workers: Int
        /// The host's load as its agent last reported it; `nil` until the first report (or from
        /// an agent or broker without load reports).
        public var load: HostLoad?
    }

    /// A gateway (a worker on some host) the caller may see.
    public struct Gateway: Codable, Sendable, Equatable {
        /// The client's gateway id.
        public var gateway: String
        /// The host agent that runs it.
        public var host: String
        /// The worker's pid on that host (0 until known).
        public var pid: Int64
        /// Whether the worker said hello.
        public var connected: Bool
        /// Channels with traffic that neither side closed yet.
        public var channels: Int
    }

    /// The broker's pid.
    public var pid: Int64
    /// Seconds since the broker started.
    public var uptimeSeconds: Double
    /// The endpoints it is bound to.
    public var endpoints: [String]
    /// Host agents, by name.
    public var hosts: [Host]
    /// Registered clients.
    public var clients: Int
    /// Gateways the caller may see (a client key sees its own only).
    public var gateways: [Gateway]
    /// The number of those gateways' workers.
    public var workers: Int
    /// Their open channels.
    public var channels: Int
    /// Messages received since start.
    public var messagesIn: Int
    /// Messages sent since start.
    public var messagesOut: Int
    /// Messages received per second, over the last second or so.
    public var rateIn: Double
    /// Messages sent per second, over the last second or so.
    public var rateOut: Double
    /// Bytes forwarded on channels and not granted back yet (`nil` from an older broker).
    public var inFlightBytes: Int?
    /// Bytes queued for slow peers (`nil` from an older broker).
    public var queuedBytes: Int?
    /// The memory cap: past it new gateways are refused (`nil` from an older broker).
    public var memoryCapBytes: Int?

    enum CodingKeys: String, CodingKey {
        case pid, endpoints, hosts, clients, gateways, workers, channels
        case uptimeSeconds = "uptime_s"
        case messagesIn = "messages_in"
        case messagesOut = "messages_out"
        case rateIn = "rate_in"
        case rateOut = "rate_out"
        case inFlightBytes = "in_flight_bytes"
        case queuedBytes = "queued_bytes"
        case memoryCapBytes = "memory_cap_bytes"
    }

    /// Decodes the dict a broker answers BROKER_STATUS with.
    ///
    /// - Throws: A `DecodingError` if a field is missing or of the wrong kind.
    public init(_ value: Value) throws {
        self = try ValueDecoder().decode(BrokerStatus.self, from: value)
    }
}

extension BrokerStatusQuery {
    /// Asks the broker at `endpoint` for its status, typed.
    ///
    /// - Throws: As ``fetch(endpoint:keys:timeout:)``, and ``ExecnetError`` `protocolViolation`
    ///   if the answer is not a status.
    /// - Important: Blocks the calling thread up to `timeout`.
    @available(*, noasync, message: "blocks the calling thread")
    public static func fetchStatus(endpoint: String, keys: CurveClientKeys? = nil, timeout: Duration = .seconds(5)) throws -> BrokerStatus {
        let value = try fetch(endpoint: endpoint, keys: keys, timeout: timeout)
        do {
            return try BrokerStatus(value)
        } catch {
            throw ExecnetError(.protocolViolation, "broker \(endpoint) answered a status that is not one: \(error)", cause: error)
        }
    }
}
