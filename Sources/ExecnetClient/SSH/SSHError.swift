// The typed errors of ssh gateways, each carrying ssh's own text verbatim: the ssh client's last
// lines on standard error are read once and classified by what OpenSSH says (execnet#48 reported
// "HostNotFound" for every failure, a publickey refusal included).

/// Why an ssh gateway could not start, or how its ssh connection ended.
///
/// ``message`` is what ssh (or the remote host) said, verbatim. Compare errors by ``code``.
public struct SSHError: Error, Sendable, CustomStringConvertible {
    /// What kind of ssh failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case hostNotFound, hostKeyVerificationFailed, permissionDenied, connectionRefused, connectionLost
            case forwardingForbidden, noSpace, wrongArchitecture, remoteSetupFailed, failed
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The host name does not resolve ("Could not resolve hostname").
        public static let hostNotFound = Code(.hostNotFound)
        /// The server's host key is unknown or differs from the known one ("Host key verification failed").
        public static let hostKeyVerificationFailed = Code(.hostKeyVerificationFailed)
        /// The server refused every authentication ssh could try without a prompt ("Permission denied (publickey)").
        public static let permissionDenied = Code(.permissionDenied)
        /// Nothing listens on the server's port ("Connection refused").
        public static let connectionRefused = Code(.connectionRefused)
        /// The connection ended: the server went away, the network failed, or the server stopped
        /// answering keep-alives.
        public static let connectionLost = Code(.connectionLost)
        /// The server forbids the Unix-socket forwarding the worker reaches its client through
        /// (`AllowStreamLocalForwarding no`, `DisableForwarding yes`).
        public static let forwardingForbidden = Code(.forwardingForbidden)
        /// The remote host has no space left for the worker bundle or its files.
        public static let noSpace = Code(.noSpace)
        /// The remote host cannot run the worker: another architecture, or a glibc too old or missing.
        public static let wrongArchitecture = Code(.wrongArchitecture)
        /// Preparing the remote host failed otherwise (its private directory, the bundle cache).
        public static let remoteSetupFailed = Code(.remoteSetupFailed)
        /// ssh failed for another reason (its text says which).
        public static let failed = Code(.failed)

        public var description: String {
            switch kind {
            case .hostNotFound: "hostNotFound"
            case .hostKeyVerificationFailed: "hostKeyVerificationFailed"
            case .permissionDenied: "permissionDenied"
            case .connectionRefused: "connectionRefused"
            case .connectionLost: "connectionLost"
            case .forwardingForbidden: "forwardingForbidden"
            case .noSpace: "noSpace"
            case .wrongArchitecture: "wrongArchitecture"
            case .remoteSetupFailed: "remoteSetupFailed"
            case .failed: "failed"
            }
        }
    }

    /// The kind of failure.
    public let code: Code
    /// The ssh destination (`[user@]host`).
    public let destination: String
    /// What ssh or the remote host said, verbatim (its last lines on standard error).
    public let message: String
    /// The gateway involved, if any.
    public let gatewayID: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - destination: The ssh destination.
    ///   - message: ssh's own text.
    ///   - gatewayID: The gateway involved, if any.
    public init(_ code: Code, destination: String, message: String, gatewayID: String? = nil) {
        self.code = code
        self.destination = destination
        self.message = message
        self.gatewayID = gatewayID
    }

    public var description: String {
        var text = "SSHError.\(code) (ssh to \(destination)): \(message)"
        if let gatewayID { text += " [gateway \(gatewayID)]" }
        return text
    }

    /// The code for what ssh wrote before it failed, read from its own messages (OpenSSH's wording).
    ///
    /// - Parameter text: ssh's standard error (its last lines).
    /// - Returns: The code; ``Code/failed`` when no known message is there.
    static func classify(_ text: String) -> Code {
        let rules: [(needle: String, code: Code)] = [
            ("Could not resolve hostname", .hostNotFound),
            ("Name or service not known", .hostNotFound),
            ("Host key verification failed", .hostKeyVerificationFailed),
            ("REMOTE HOST IDENTIFICATION HAS CHANGED", .hostKeyVerificationFailed),
            ("Permission denied (", .permissionDenied),
            ("forwarding failed for listen path", .forwardingForbidden),
            ("forwarding failed for listen port", .forwardingForbidden),
            ("No space left on device", .noSpace),
            ("Connection refused", .connectionRefused),
            ("closed by remote host", .connectionLost),
            ("Connection closed by", .connectionLost),
            ("Connection reset", .connectionLost),
            ("Broken pipe", .connectionLost),
            ("Timeout, server", .connectionLost),
            ("Connection timed out", .connectionLost),
            ("not responding", .connectionLost),
            ("Network is unreachable", .connectionLost),
            ("No route to host", .connectionLost),
        ]
        for rule in rules where text.contains(rule.needle) { return rule.code }
        return .failed
    }
}

extension SSHError: Equatable {
    /// Errors are equal when their codes are equal.
    public static func == (lhs: SSHError, rhs: SSHError) -> Bool { lhs.code == rhs.code }
}
