// PeerEnd: why a channel ended without its peer closing it. It is the `cause` of the
// `endOfChannel` error such a channel throws, as execnet raises EOFError for a dying gateway.

/// Why a channel's peer went away without closing the channel: its worker died or exited, the
/// gateway was terminated, or a broker lost it.
///
/// A channel that ends this way throws ``ExecnetError`` with code
/// ``ExecnetError/Code/endOfChannel`` (execnet's `EOFError`) whose ``ExecnetError/cause`` is a
/// `PeerEnd`; ``ExecnetError/peerEnd`` reads it. ``RemoteError`` is only for errors the remote
/// task raised.
public struct PeerEnd: Error, Sendable, Hashable, CustomStringConvertible {
    /// What happened, for people: "worker of gateway gw0 killed by signal 9 (SIGKILL)",
    /// "gateway gw0 was terminated", "broker … lost gateway gw0", ….
    public let reason: String
    /// The gateway whose peer went away.
    public let gatewayID: String?
    /// How the worker process ended, when that is known.
    public let exit: WorkerExit?
    /// The worker's last lines on standard error before it ended (popen gateways), oldest first.
    public let stderr: [String]

    /// Creates a cause.
    ///
    /// - Parameters:
    ///   - reason: What happened.
    ///   - gatewayID: The gateway, if known.
    ///   - exit: How the worker ended, if known.
    ///   - stderr: The worker's last standard-error lines.
    public init(_ reason: String, gatewayID: String? = nil, exit: WorkerExit? = nil, stderr: [String] = []) {
        self.reason = reason
        self.gatewayID = gatewayID
        self.exit = exit
        self.stderr = stderr
    }

    public var description: String {
        var text = reason
        if !stderr.isEmpty { text += "; last stderr lines: " + stderr.joined(separator: " | ") }
        return text
    }
}

extension ExecnetError {
    /// Why the peer went away, for an `endOfChannel` error of a channel whose worker died, whose
    /// gateway was terminated or whose broker lost it; `nil` after a plain close.
    public var peerEnd: PeerEnd? { cause as? PeerEnd }
}
