// The error type of the Execnet runtime (not of the serializer, which has SerializerError, nor of
// the remote side, which is RemoteError). Errors are compared by code only, so tests and callers
// match on `code` and never on message text.

/// An error raised by the Execnet runtime: timeouts, end of channel, misuse, bad specs,
/// missing workers, dead workers, protocol violations and transport failures.
///
/// Compare errors by ``code``: two errors with the same code are equal whatever their messages.
public struct ExecnetError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case timeout, endOfChannel, invalidState, invalidSpec, workerNotFound, workerDied
            case protocolViolation, protocolVersionMismatch, transport, unencodable, messageTooLarge, spawnFailed
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// An operation did not complete within its timeout.
        public static let timeout = Code(.timeout)
        /// The channel has ended: nothing more will arrive (execnet's `EOFError`).
        public static let endOfChannel = Code(.endOfChannel)
        /// The operation is not allowed in the object's current state (closed channel, callback set, …).
        public static let invalidState = Code(.invalidState)
        /// A gateway spec is malformed or names something unsupported.
        public static let invalidSpec = Code(.invalidSpec)
        /// No worker executable was found; the message names every path tried.
        public static let workerNotFound = Code(.workerNotFound)
        /// The worker process ended (on its own, by a signal, or before it finished starting).
        public static let workerDied = Code(.workerDied)
        /// A peer sent something the protocol does not allow.
        public static let protocolViolation = Code(.protocolViolation)
        /// The worker speaks another protocol version; the message names both versions.
        public static let protocolVersionMismatch = Code(.protocolVersionMismatch)
        /// The transport (ZeroMQ, a system call) failed.
        public static let transport = Code(.transport)
        /// A value could not be serialized; only that operation failed.
        public static let unencodable = Code(.unencodable)
        /// A message is larger than the configured maximum.
        public static let messageTooLarge = Code(.messageTooLarge)
        /// A broker could not start a worker (no host agent with a free slot, a worker not allowed, …).
        public static let spawnFailed = Code(.spawnFailed)

        public var description: String {
            switch kind {
            case .timeout: "timeout"
            case .endOfChannel: "endOfChannel"
            case .invalidState: "invalidState"
            case .invalidSpec: "invalidSpec"
            case .workerNotFound: "workerNotFound"
            case .workerDied: "workerDied"
            case .protocolViolation: "protocolViolation"
            case .protocolVersionMismatch: "protocolVersionMismatch"
            case .transport: "transport"
            case .unencodable: "unencodable"
            case .messageTooLarge: "messageTooLarge"
            case .spawnFailed: "spawnFailed"
            }
        }
    }

    /// The kind of failure.
    public let code: Code
    /// A sentence for people; never parse it.
    public let message: String
    /// The gateway involved, if any.
    public let gatewayID: String?
    /// The channel involved, if any.
    public let channelID: Int32?
    /// The underlying error, if this one wraps another.
    public let cause: (any Error)?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: A sentence for people.
    ///   - gatewayID: The gateway involved, if any.
    ///   - channelID: The channel involved, if any.
    ///   - cause: The underlying error, if any.
    public init(
        _ code: Code, _ message: String, gatewayID: String? = nil, channelID: Int32? = nil,
        cause: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.gatewayID = gatewayID
        self.channelID = channelID
        self.cause = cause
    }

    public var description: String {
        var text = "ExecnetError.\(code): \(message)"
        if let gatewayID { text += " [gateway \(gatewayID)]" }
        if let channelID { text += " [channel \(channelID)]" }
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

extension ExecnetError: Equatable {
    /// Errors are equal when their codes are equal.
    public static func == (lhs: ExecnetError, rhs: ExecnetError) -> Bool { lhs.code == rhs.code }
}

/// Checks `error` for an ``ExecnetError`` with the given code.
func isExecnetError(_ error: any Error, _ code: ExecnetError.Code) -> Bool {
    (error as? ExecnetError)?.code == code
}
