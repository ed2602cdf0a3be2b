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
        /// The client that owns it: its key's comment in the authorized-keys file or the key's
        /// fingerprint (never the key); without CURVE, the client's hostname and pid (`nil`
        /// from an older broker).
        public var client: String?
    }

    /// A worker that ended other than by a clean exit (killed, crashed, lost, cut off).
    public struct Death: Codable, Sendable, Equatable {
        /// The client's gateway id.
        public var gateway: String
        /// The host agent that ran it.
        public var host: String
        /// The owning client's label (as ``Gateway/client``).
        public var client: String
        /// What happened, as the client was told.
        public var cause: String
        /// The signal that killed it, if one did.
        public var signal: Int?
        /// Its exit status, if it exited.
        public var exitStatus: Int?
        /// Its last lines on standard error, oldest first, as its agent saw them (`nil`: none).
        public var stderr: [String]?
        /// Seconds between the death and this status.
        public var secondsAgo: Double

        enum CodingKeys: String, CodingKey {
            case gateway, host, client, cause, signal, stderr
            case exitStatus = "exit_status"
            case secondsAgo = "seconds_ago"
        }
    }

    /// Channels whose sender has used its credit up and waits for the receiver's grant.
    public struct CreditStalls: Codable, Sendable, Equatable {
        /// One blocked direction of a channel.
        public struct Channel: Codable, Sendable, Equatable {
            /// The gateway the channel belongs to.
            public var gateway: String
            /// The channel id.
            public var channel: Int
            /// `to_worker` (the client waits) or `to_client` (the worker waits).
            public var direction: String
        }

        /// Channel directions blocked now (of the gateways the caller may see).
        public var blocked: Int
        /// The first of them (at most 100).
        public var channels: [Channel]
        /// How many times a sender ran out of credit since the broker started (`nil` unless the
        /// caller may read broker-wide figures).
        public var started: Int?
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
    /// DATA payload bytes forwarded since start, both ways (`nil` from an older broker).
    public var dataBytes: Int?
    /// The last worker deaths the caller may see (a client key: its own), newest first, at most
    /// 50 (`nil` from an older broker).
    public var recentDeaths: [Death]?
    /// Channels blocked on credit now (`nil` from an older broker).
    public var creditStalls: CreditStalls?

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
        case dataBytes = "data_bytes"
        case recentDeaths = "recent_deaths"
        case creditStalls = "credit_stalls"
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

extension BrokerStatus {
    /// Whether `other` differs from this status in what a live view shows at once: hosts and
    /// their workers, gateways, deaths, blocked channels (not counters, rates or ages).
    ///
    /// - Parameter other: A later status.
    /// - Returns: `true` if the two differ in any of those.
    public func differsInShape(from other: BrokerStatus) -> Bool {
        func hostShape(_ status: BrokerStatus) -> [String] { status.hosts.map { "\($0.name) \($0.slots) \($0.workers)" } }
        func deathShape(_ status: BrokerStatus) -> [String] { (status.recentDeaths ?? []).map { "\($0.gateway) \($0.cause)" } }
        return hostShape(self) != hostShape(other) || gateways != other.gateways || deathShape(self) != deathShape(other)
            || creditStalls?.blocked != other.creditStalls?.blocked
    }
}
