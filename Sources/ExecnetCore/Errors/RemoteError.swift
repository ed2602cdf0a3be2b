// RemoteError: an error that happened on the other side of a channel, re-raised here. It is a type
// of its own because callers catch it by type, as execnet's users catch `RemoteError`.

/// How a worker process ended.
public enum WorkerExit: Sendable, Hashable, CustomStringConvertible {
    /// The process exited with this status code.
    case exited(Int32)
    /// The process was killed by this signal number.
    case signaled(Int32)
    /// The peer stopped answering heartbeats (remote gateways).
    case heartbeatLost

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal) (\(signalName(signal)))"
        case .heartbeatLost: "stopped answering heartbeats"
        }
    }
}

/// An error raised on the remote side of a channel (the task threw, or the peer closed the channel
/// with an error), re-raised locally.
///
/// A channel reports its remote error exactly once: the first `receive` or `waitClose` after it
/// arrived throws it; later calls see the end of the channel. A peer that died or was terminated
/// is not a remote error: the channel ends with ``ExecnetError`` `endOfChannel` carrying a
/// ``PeerEnd`` (execnet's `EOFError`).
public struct RemoteError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The remote side's text (the task's error description, or what the peer sent).
    public let text: String
    /// The task the channel was running, if this side started it.
    public let taskName: String?
    /// The gateway the channel belongs to.
    public let gatewayID: String?
    /// Always `nil` for errors from a channel: a dead worker gives ``PeerEnd`` (kept for source compatibility).
    public let exit: WorkerExit?

    /// The remote side's error text as it was sent (execnet's `formatted`: for a Swift task,
    /// `"<ErrorType>: <description>"`; for other peers, their traceback text).
    public var formatted: String { text }

    /// Creates a remote error.
    ///
    /// - Parameters:
    ///   - text: The remote side's text.
    ///   - taskName: The task the channel was running, if known.
    ///   - gatewayID: The gateway the channel belongs to, if known.
    ///   - exit: How the worker ended, if it died.
    public init(_ text: String, taskName: String? = nil, gatewayID: String? = nil, exit: WorkerExit? = nil) {
        self.text = text
        self.taskName = taskName
        self.gatewayID = gatewayID
        self.exit = exit
    }

    public var description: String {
        var head = "RemoteError"
        if let gatewayID { head += " on \(gatewayID)" }
        if let taskName { head += " in task '\(taskName)'" }
        return "\(head): \(text)"
    }
}

/// A short name for the common signals.
package func signalName(_ signal: Int32) -> String {
    switch signal {
    case 1: "SIGHUP"
    case 2: "SIGINT"
    case 3: "SIGQUIT"
    case 6: "SIGABRT"
    case 9: "SIGKILL"
    case 11: "SIGSEGV"
    case 13: "SIGPIPE"
    case 15: "SIGTERM"
    default: "signal \(signal)"
    }
}
