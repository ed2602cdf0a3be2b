// The shared state of one channel end, held by its gateway connection's registry: ordered
// items, credit, close state. State lives in a Mutex<ChannelState>; every method decides under
// the lock and acts (resume, send, dispatch a callback) after unlocking. Users hold a `Channel`
// (declared in ExecnetValue, its API in Channel.swift), a thin handle whose deinit closes a channel
// still open (execnet's `__del__`). I/O-thread entry points are in Channel+Incoming.swift.

import ExecnetValue
import Logging
import Synchronization

/// One channel end: what the registry holds and dispatches to, behind a handle's
/// ``Channel/machinery``. See the file comment.
@usableFromInline package final class ChannelCore: ChannelMachinery {
    /// The channel's id within its gateway (odd: opened by the client, even: opened by the worker).
    package let id: Int32
    /// The task this channel runs, if this side started it with `remoteExec`.
    package let taskName: String?
    /// The gateway connection the channel belongs to.
    @usableFromInline package let connection: PeerConnection
    /// On a worker: the channel of the running task, which the task may not close itself.
    package let isTaskChannel: Bool
    let state = Mutex(ChannelState())
    private let waiterIDs = Atomic<Int>(0)

    init(id: Int32, connection: PeerConnection, taskName: String?, isTaskChannel: Bool) {
        self.id = id
        self.connection = connection
        self.taskName = taskName
        self.isTaskChannel = isTaskChannel
    }

    /// The id of the gateway this channel belongs to.
    package var gatewayID: String { connection.gatewayID }

    func nextWaiterID() -> Int {
        waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
    }

    // MARK: - Sending

    /// Sends a value (see ``Channel/send(_:)-(Value)``).
    nonisolated(nonsending) func send(_ value: Value) async throws {
        let payload = try connection.encode(value)
        if try !takeCreditNow(payload.count) {
            try await waitForCredit(payload.count)
        }
        transmit(payload)
    }

    /// Sends a value, blocking the calling thread while the window is full.
    @available(*, noasync, message: "blocks the calling thread; use send(_:)")
    func sendBlocking(_ value: Value) throws {
        try checkMayBlock()
        let payload = try connection.encode(value)
        let bytes = payload.count
        let waiter: BlockingOutcome<Void>? = try state.withLock { state in
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
        try state.withLock { state in
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
                let immediate: Result<Void, any Error>? = state.withLock { state in
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
            let removed = state.withLock { state -> SendWaiter? in
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

    /// Closes the channel (see ``Channel/close(error:)``); a task may not close its own.
    func close(error: String? = nil) throws {
        if isTaskChannel {
            throw ExecnetError(.invalidState, "a task may not close its own channel; return (or throw) instead",
                               gatewayID: gatewayID, channelID: id)
        }
        closeLocally(error: error)
    }

    /// Closes this end (used by the runtime for task channels too).
    package func closeLocally(error: String?) {
        let effects = state.withLock { takeLocalClose(&$0) }
        carryOutLocalClose(effects, error: error)
    }

    /// Marks this end closed; `nil` if it already was.
    private func takeLocalClose(_ state: inout ChannelState) -> CloseEffects? {
        if state.localClosed { return nil }
        state.localClosed = true
        // Each side sends its own close exactly once, even after the peer's: the peer then
        // knows nothing more comes and lets the channel go (see docs/PROTOCOL.md, Closing).
        let notify = !state.closeSent && !state.remoteClosed
        state.closeSent = true
        return takeCloseEffects(&state, notifyPeer: notify)
    }

    /// Sends this side's close if it is due, then wakes whoever the close ends. Lock not held.
    private func carryOutLocalClose(_ effects: CloseEffects?, error: String?) {
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

    // MARK: - Handles

    /// The channel's handle: the one users hold, if there is one (so a channel that goes out and
    /// comes back is the same object), else a new one.
    func handle() -> Channel {
        state.withLock { state in
            if let existing = state.handle { return existing }
            let created = Channel(id: id, taskName: taskName, machinery: self)
            state.handle = created
            return created
        }
    }

    /// The channel's handle if one exists.
    func currentHandle() -> Channel? {
        state.withLock { $0.handle }
    }

    /// Records `handle`, just made for this channel, as its handle.
    func adopt(_ handle: Channel) {
        state.withLock { $0.handle = handle }
    }

    /// The last reference to the channel's handle went away (execnet's `Channel.__del__`): a
    /// channel still open closes itself with a plain close, so the peer's `waitClose` returns; an
    /// error of the peer's that nobody received is logged, as execnet warns of it. A handle made
    /// meanwhile (a value naming the channel arrived) keeps the channel open.
    @usableFromInline package func handleReleased() {
        // A handle loaded under the lock is released after unlocking: its deinit takes the lock.
        var newer: Channel?
        var unreported: RemoteError?
        let effects = state.withLock { state -> CloseEffects? in
            if let handle = state.handle {
                newer = handle
                return nil
            }
            unreported = state.pendingError
            return takeLocalClose(&state)
        }
        withExtendedLifetime(newer) {}
        if let unreported {
            connection.logger.warning("channel \(id) of \(gatewayID) was let go with an error nobody received: \(unreported)")
        }
        carryOutLocalClose(effects, error: nil)
        connection.handleGone(id)
    }

    /// Whether neither side has closed the channel and its peer has not gone away.
    var hasReceiver: Bool { state.withLock { !$0.localClosed && !$0.remoteClosed } }

    /// Whether the channel counts as closed (see ``Channel/isClosed``).
    var isClosed: Bool { state.withLock { $0.isClosed } }
}
