// The public Channel API: the handle users hold (declared in ExecnetValue) forwards to its
// ChannelCore (ChannelCore.swift), which the gateway connection's registry holds; when the last
// reference to the handle goes, a channel still open closes itself, as execnet's
// `Channel.__del__` does.

import ExecnetValue
import Logging
import Synchronization

extension Channel {
    /// The machinery of this channel (always a ``ChannelCore``: only this module makes channels).
    @inlinable package var core: ChannelCore { unsafeDowncast(machinery, to: ChannelCore.self) }
    /// The gateway connection the channel belongs to.
    @inlinable package var connection: PeerConnection { core.connection }
    /// On a worker: the channel of the running task, which the task may not close itself.
    package var isTaskChannel: Bool { core.isTaskChannel }

    /// A channel bound to no gateway: sending goes nowhere. For serializer tests of channel values.
    convenience init(id: Int32) {
        let core = ChannelCore(id: id, connection: .detached, taskName: nil, isTaskChannel: false)
        self.init(id: id, taskName: nil, machinery: core)
        core.adopt(self)
    }

    /// The id of the gateway this channel belongs to.
    public var gatewayID: String { core.gatewayID }

    // MARK: - Sending

    /// Sends a value to the other side.
    ///
    /// Suspends while the flow-control window is full. A value that cannot be encoded fails this
    /// call only; the channel stays usable. Runs on the caller's executor
    /// (`nonisolated(nonsending)`): a call costs no executor hop, which matters in tight loops.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: ``ExecnetError`` `invalidState` if the channel is closed, `unencodable` if the value
    ///   cannot be serialized; `CancellationError` if cancelled while waiting for credit (nothing sent).
    nonisolated(nonsending) public func send(_ value: Value) async throws {
        try await core.send(value)
    }

    /// Sends any `Encodable` value, converted with ``ValueEncoder``.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: As ``send(_:)-(Value)``, plus encoding errors.
    @_disfavoredOverload
    public func send<T: Encodable>(_ value: T) async throws {
        try await core.send(try ValueEncoder().encode(value))
    }

    /// Sends a value, blocking the calling thread while the window is full.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: As ``send(_:)-(Value)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use send(_:)")
    public func sendBlocking(_ value: Value) throws {
        try core.sendBlocking(value)
    }

    // MARK: - Receiving

    /// Receives the next item.
    ///
    /// Runs on the caller's executor (`nonisolated(nonsending)`); a queued item is taken without
    /// suspending.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits until an item arrives or the channel ends.
    /// - Returns: The item.
    /// - Throws: ``RemoteError`` once if the peer closed with an error; ``ExecnetError``
    ///   `endOfChannel` after that, after a plain close, or when the peer went away (its
    ///   ``ExecnetError/peerEnd`` gives the cause), `timeout`, or
    ///   `invalidState` if a callback is set; `CancellationError` if cancelled (nothing is consumed);
    ///   a ``SerializerError`` if the item cannot be decoded (it is consumed).
    nonisolated(nonsending) public func receive(timeout: Duration? = nil) async throws -> Value {
        try await core.receive(timeout: timeout)
    }

    /// Receives the next item as a `Decodable` type, converted with ``ValueDecoder``.
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - timeout: How long to wait; `nil` waits indefinitely.
    /// - Returns: The decoded item.
    /// - Throws: As ``receive(timeout:)``, plus `DecodingError`.
    public func receive<T: Decodable>(as type: T.Type, timeout: Duration? = nil) async throws -> T {
        try ValueDecoder().decode(type, from: try await core.receive(timeout: timeout))
    }

    /// Receives the next item, blocking the calling thread.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Returns: The item.
    /// - Throws: As ``receive(timeout:)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use receive(timeout:)")
    public func receiveBlocking(timeout: Duration? = nil) throws -> Value {
        try core.receiveBlocking(timeout: timeout)
    }

    // MARK: - Callbacks

    /// Registers a callback that receives every item, on the callback thread, in order.
    ///
    /// Items that already arrived are delivered to it on the calling thread before this returns
    /// (and the endmarker too, if the channel has already ended), as execnet does; later items
    /// arrive on the callback thread. Afterwards ``receive(timeout:)`` is refused. Callbacks must
    /// not block for long: they share one thread. A callback that throws closes the channel with
    /// an error that the other side receives. The callback holds the channel until it ends: it
    /// does not close itself when its user lets go.
    ///
    /// - Parameter callback: Called with each item.
    /// - Throws: ``ExecnetError`` `invalidState` if a callback is already set.
    public func setCallback(_ callback: @escaping @Sendable (Value) throws -> Void) throws {
        try register(CallbackRegistration(callback: callback, endmarker: nil))
    }

    /// Registers a callback, and an endmarker that the callback receives exactly once when the
    /// channel ends (also if it had already ended).
    ///
    /// `setCallback(f, endmarker: nil)` delivers the none value at the end; ``setCallback(_:)``
    /// delivers nothing.
    ///
    /// - Parameters:
    ///   - callback: Called with each item, then with the endmarker.
    ///   - endmarker: The value passed to `callback` when the channel ends.
    /// - Throws: ``ExecnetError`` `invalidState` if a callback is already set.
    public func setCallback(_ callback: @escaping @Sendable (Value) throws -> Void, endmarker: Value) throws {
        try register(CallbackRegistration(callback: callback, endmarker: endmarker))
    }

    /// Registers a callback; the registration holds this handle until the channel's end.
    package func register(_ registration: CallbackRegistration) throws {
        var registration = registration
        registration.keeper = self
        try core.register(registration)
    }

    // MARK: - Closing

    /// Closes the channel, optionally with an error that the other side receives as ``RemoteError``.
    ///
    /// Items that already arrived stay receivable; after them, `receive` reports the end. Closing
    /// twice does nothing. A callback's endmarker is delivered.
    ///
    /// - Parameter error: The error text for the other side, or `nil` for a plain close.
    /// - Throws: ``ExecnetError`` `invalidState` when a task tries to close its own channel (the
    ///   runtime closes it when the task returns or throws).
    public func close(error: String? = nil) throws {
        try core.close(error: error)
    }

    /// Closes this end (used by the runtime for task channels too).
    package func closeLocally(error: String?) {
        core.closeLocally(error: error)
    }

    /// Waits until the channel is closed.
    ///
    /// With a callback, this returns only after every item and the endmarker were delivered.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Throws: ``RemoteError`` if the peer closed with an error that was not yet reported;
    ///   ``ExecnetError`` `endOfChannel` with a ``PeerEnd`` cause if the peer went away without
    ///   closing (as execnet raises EOFError); `timeout`; `CancellationError`.
    public func waitClose(timeout: Duration? = nil) async throws {
        try await core.waitClose(timeout: timeout)
    }

    /// Waits until the channel is closed, blocking the calling thread.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Throws: As ``waitClose(timeout:)``.
    /// - Important: Blocks the calling thread.
    @available(*, noasync, message: "blocks the calling thread; use waitClose(timeout:)")
    public func waitCloseBlocking(timeout: Duration? = nil) throws {
        try core.waitCloseBlocking(timeout: timeout)
    }

    /// Whether something on the other side still receives what is sent here: neither side has
    /// closed the channel and its peer has not gone away.
    ///
    /// execnet's counterpart is a channel that is neither closed nor "send-only": once the peer
    /// let go of its end (closed it, returned from its task, died), this is `false` and `send`
    /// fails; items that already arrived stay receivable.
    public var hasReceiver: Bool { core.hasReceiver }

    /// Whether the channel is closed: this side closed it, or the peer did (and, with a callback,
    /// every item and the endmarker were delivered).
    public var isClosed: Bool { core.isClosed }
}

extension Channel: Hashable {
    /// Channels are equal only to themselves.
    public static func == (lhs: Channel, rhs: Channel) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

extension Channel: CustomStringConvertible {
    public var description: String {
        let closed = isClosed ? ", closed" : ""
        return "<Channel id=\(id) gateway=\(gatewayID)\(closed)>"
    }
}

// MARK: - Async iteration

extension Channel: AsyncSequence {
    public typealias Element = Value

    /// Iterates the channel's items until it ends; a remote error is thrown.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: Channel

        /// The next item, or `nil` at the end of the channel.
        nonisolated(nonsending) public mutating func next() async throws -> Value? {
            do {
                return try await channel.core.receive()
            } catch let error as ExecnetError where error.code == .endOfChannel {
                return nil
            }
        }
    }

    /// An iterator over the channel's items.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: self) }
}
