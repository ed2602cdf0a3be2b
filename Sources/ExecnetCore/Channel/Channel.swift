// The public Channel: ordered, bidirectional messages with one task in a gateway. State lives in
// a Mutex<ChannelState>; every method decides under the lock and acts (resume, send, dispatch a
// callback) after unlocking. I/O-thread entry points are in Channel+Incoming.swift.

import ExecnetValue
import Logging
import Synchronization

/// A channel's machinery, behind ``Channel/machinery`` (the value format declares `Channel` and
/// knows only its id): its connection, its state under a lock, and its waiter ids.
@usableFromInline package final class ChannelCore: Sendable {
    /// The gateway connection the channel belongs to.
    @usableFromInline package let connection: PeerConnection
    /// On a worker: the channel of the running task, which the task may not close itself.
    package let isTaskChannel: Bool
    let state = Mutex(ChannelState())
    let waiterIDs = Atomic<Int>(0)

    init(connection: PeerConnection, isTaskChannel: Bool) {
        self.connection = connection
        self.isTaskChannel = isTaskChannel
    }
}

extension Channel {
    /// The machinery of this channel (always a ``ChannelCore``: only this module makes channels).
    @inlinable package var core: ChannelCore { unsafeDowncast(machinery, to: ChannelCore.self) }
    /// The gateway connection the channel belongs to.
    @inlinable package var connection: PeerConnection { core.connection }
    /// On a worker: the channel of the running task, which the task may not close itself.
    package var isTaskChannel: Bool { core.isTaskChannel }

    convenience init(id: Int32, connection: PeerConnection, taskName: String?, isTaskChannel: Bool) {
        self.init(id: id, taskName: taskName, machinery: ChannelCore(connection: connection, isTaskChannel: isTaskChannel))
    }

    /// A channel bound to no gateway: sending goes nowhere. For serializer tests of channel values.
    convenience init(id: Int32) {
        self.init(id: id, connection: .detached, taskName: nil, isTaskChannel: false)
    }

    /// The id of the gateway this channel belongs to.
    public var gatewayID: String { connection.gatewayID }

    func nextWaiterID() -> Int {
        core.waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
    }

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
        let payload = try connection.encode(value)
        if try !takeCreditNow(payload.count) {
            try await waitForCredit(payload.count)
        }
        transmit(payload)
    }

    /// Sends any `Encodable` value, converted with ``ValueEncoder``.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: As ``send(_:)-(Value)``, plus encoding errors.
    @_disfavoredOverload
    public func send<T: Encodable>(_ value: T) async throws {
        try await send(try ValueEncoder().encode(value))
    }

    /// Sends a value, blocking the calling thread while the window is full.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: As ``send(_:)-(Value)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use send(_:)")
    public func sendBlocking(_ value: Value) throws {
        try checkMayBlock()
        let payload = try connection.encode(value)
        let bytes = payload.count
        let waiter: BlockingOutcome<Void>? = try core.state.withLock { state in
            try checkCanSend(state)
            if state.senders.isEmpty && state.hasCredit(for: bytes) {
                state.takeCredit(bytes)
                return nil
            }
            let outcome = BlockingOutcome<Void>()
            state.senders.append(.blocking(id: nextWaiterID(), bytes: bytes, outcome))
            return outcome
        }
        if let waiter { try waiter.wait(deadline: nil)!.get() }
        transmit(payload)
    }

    /// The blocking API waits for the I/O thread; on the I/O thread itself it would wait forever.
    func checkMayBlock() throws {
        if connection.transport.isOnIOThread {
            throw ExecnetError(.invalidState, "blocking channel call on the execnet I/O thread; use the async API there",
                               gatewayID: gatewayID, channelID: id)
        }
    }

    private func checkCanSend(_ state: ChannelState) throws {
        if state.localClosed || state.remoteClosed {
            throw ExecnetError(.invalidState, "cannot send to channel \(id): it is closed",
                               gatewayID: gatewayID, channelID: id)
        }
    }

    /// Takes credit for `bytes` if the window has room and nobody waits before us (no suspension,
    /// no async call: the common case of a sender within its window).
    private func takeCreditNow(_ bytes: Int) throws -> Bool {
        try core.state.withLock { state in
            try checkCanSend(state)
            if state.senders.isEmpty && state.hasCredit(for: bytes) {
                state.takeCredit(bytes)
                return true
            }
            return false
        }
    }

    nonisolated(nonsending) private func waitForCredit(_ bytes: Int) async throws {
        if try takeCreditNow(bytes) { return }
        let waiterID = nextWaiterID()
        // The slow path only: how long senders wait for credit (SharedCounters, published as metrics).
        let waitStarted = ContinuousClock.now
        defer {
            let waited = ContinuousClock.now - waitStarted
            let nanoseconds = waited.components.seconds &* 1_000_000_000 &+ waited.components.attoseconds / 1_000_000_000
            SharedCounters.creditStalls.wrappingAdd(1, ordering: .relaxed)
            SharedCounters.creditWaitNanoseconds.wrappingAdd(Int(nanoseconds), ordering: .relaxed)
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate: Result<Void, any Error>? = core.state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    do { try checkCanSend(state) } catch { return .failure(error) }
                    if state.senders.isEmpty && state.hasCredit(for: bytes) {
                        state.takeCredit(bytes)
                        return .success(())
                    }
                    state.senders.append(.async(id: waiterID, bytes: bytes, continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let removed = core.state.withLock { state -> SendWaiter? in
                guard let index = state.senders.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.senders.remove(at: index)
            }
            removed?.resume(.failure(CancellationError()))
        }
    }

    private func transmit(_ payload: [UInt8]) {
        connection.send(WireMessage(channelID: id, type: .data, payload: payload))
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
        if isTaskChannel {
            throw ExecnetError(.invalidState, "a task may not close its own channel; return (or throw) instead",
                               gatewayID: gatewayID, channelID: id)
        }
        closeLocally(error: error)
    }

    /// Closes this end (used by the runtime for task channels too).
    package func closeLocally(error: String?) {
        let effects = core.state.withLock { state -> CloseEffects? in
            if state.localClosed { return nil }
            state.localClosed = true
            // Each side sends its own close exactly once, even after the peer's: the peer then
            // knows nothing more comes and lets the channel go (see docs/PROTOCOL.md, Closing).
            let notify = !state.closeSent && !state.remoteClosed
            state.closeSent = true
            return takeCloseEffects(&state, notifyPeer: notify)
        }
        guard let effects else { return }
        if effects.notifyPeer {
            if let error {
                let payload = (try? connection.encode(.string(error))) ?? []
                connection.send(WireMessage(channelID: id, type: .closeError, payload: payload))
            } else {
                connection.send(WireMessage(channelID: id, type: .close, payload: []))
            }
        }
        perform(effects)
    }

    /// Whether something on the other side still receives what is sent here: neither side has
    /// closed the channel and its peer has not gone away.
    ///
    /// execnet's counterpart is a channel that is neither closed nor "send-only": once the peer
    /// let go of its end (closed it, returned from its task, died), this is `false` and `send`
    /// fails; items that already arrived stay receivable.
    public var hasReceiver: Bool { core.state.withLock { !$0.localClosed && !$0.remoteClosed } }

    /// Whether the channel is closed: this side closed it, or the peer did (and, with a callback,
    /// every item and the endmarker were delivered).
    public var isClosed: Bool { core.state.withLock { $0.isClosed } }
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
