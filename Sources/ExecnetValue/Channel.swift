// The channel as the value format sees it: an identity with an id, which ``Value/channel(_:)``
// carries. Its machinery (connection, state, sending and receiving) is ExecnetCore's, in
// Channel/Channel.swift there, behind an opaque reference this module cannot look into.

/// An ordered, bidirectional message channel between this process and a task in a gateway.
///
/// A channel carries ``Value``s (or any `Codable` type, through ``ValueEncoder``) in order, in both
/// directions. Receiving blocks (suspends) until an item arrives, the channel ends, or a timeout.
/// When the peer closes the channel with an error, the next `receive` or `waitClose` throws
/// ``RemoteError`` once; later calls throw ``ExecnetError`` `endOfChannel`. When the peer goes
/// away without closing (its worker died or exited, the gateway was terminated, the broker lost
/// it), every `receive` and `waitClose` throws `endOfChannel` whose ``ExecnetError/peerEnd`` says why.
///
/// Sending is flow-controlled: a sender may be ahead of its receiver by at most a window of
/// 1,024 messages or 16 MiB; beyond that `send` suspends until the receiver consumes items.
///
/// Channels can be sent over channels of the same gateway (as ``Value/channel(_:)``); a channel that
/// goes out and comes back is the same object.
///
/// A channel that is still open when nothing references it any more closes itself, as execnet's
/// channels do when they are garbage-collected: the peer sees a plain close (its `waitClose`
/// returns, its `receive` reports the end). A channel with a callback (``setCallback(_:)``, or in a
/// ``ReceiveQueue``) is held by its callback until it ends; a task's own channel is closed by the
/// runtime when the task returns. Swift may end a reference's lifetime at its last use: keep a
/// channel that must stay open in use (for example, `waitClose()` at the end), or use
/// `withExtendedLifetime`.
public final class Channel: Sendable {
    /// The channel's id within its gateway (odd: opened by the client, even: opened by the worker).
    public let id: Int32
    /// The task this channel runs, if this side started it with `remoteExec`.
    public let taskName: String?
    /// ExecnetCore's machinery of this channel (a `ChannelCore`), shared with the gateway
    /// connection's registry.
    @usableFromInline package let machinery: any ChannelMachinery

    /// A handle for `machinery`; only the machinery makes one, so a channel has one at a time.
    package init(id: Int32, taskName: String?, machinery: any ChannelMachinery) {
        self.id = id
        self.taskName = taskName
        self.machinery = machinery
    }

    deinit {
        machinery.handleReleased()
    }
}

/// What a ``Channel`` handle wraps: ExecnetCore's machinery of one channel end.
@usableFromInline package protocol ChannelMachinery: AnyObject, Sendable {
    /// The last reference to the channel's handle went away: a channel still open closes itself.
    func handleReleased()
}
