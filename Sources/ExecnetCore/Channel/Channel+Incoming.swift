// What happens to a channel from outside its user: items, closes and credit from the peer (called
// on the I/O thread), the peer's death, and the effects of any close (wake receivers, fail senders,
// run the callback's endmarker, wake close waiters).

import ExecnetValue

extension Channel {
    /// What a close leaves to do after unlocking.
    struct CloseEffects {
        var notifyPeer = false
        var receivers: [(ReceiveWaiter, any Error)] = []
        var senders: [SendWaiter] = []
        var scheduleEnd = false
        var closeWaiters: [(CloseWaiter, Result<Void, any Error>)] = []
        var forget = false
    }

    /// Collects, under the lock, what a transition to "ended" must do.
    func takeCloseEffects(_ state: inout ChannelState, notifyPeer: Bool) -> CloseEffects {
        var effects = CloseEffects()
        effects.notifyPeer = notifyPeer
        if state.items.isEmpty {
            while let receiver = state.receivers.popFirst() {
                effects.receivers.append((receiver, endError(state.takeEnd())))
            }
        }
        if !state.senders.isEmpty {
            effects.senders = Array(state.senders)
            state.senders.removeAll()
        }
        if state.callback != nil && !state.endmarkerDelivered && !state.replaying {
            effects.scheduleEnd = true
        }
        effects.closeWaiters = takeCloseWaiters(&state)
        // Once the peer has closed, nothing more can arrive: the registry lets go, and the channel
        // lives only as long as its user (or its callback) holds it.
        effects.forget = state.remoteClosed
        return effects
    }

    /// Takes the close waiters if the channel now counts as closed; the first gets a pending remote error.
    func takeCloseWaiters(_ state: inout ChannelState) -> [(CloseWaiter, Result<Void, any Error>)] {
        guard state.isClosed, !state.closeWaiters.isEmpty else { return [] }
        var result: [(CloseWaiter, Result<Void, any Error>)] = []
        for waiter in state.closeWaiters {
            result.append((waiter, closeOutcome(&state)))
        }
        state.closeWaiters = []
        return result
    }

    /// What `waitClose` gives on a closed channel: a pending remote error (once), the end with the
    /// peer's cause if it went away (as execnet raises EOFError for a dying gateway), or success.
    func closeOutcome(_ state: inout ChannelState) -> Result<Void, any Error> {
        if let error = state.pendingError {
            state.pendingError = nil
            return .failure(error)
        }
        if let cause = state.endCause { return .failure(endError(.peerLost(cause))) }
        return .success(())
    }

    /// Carries out close effects, outside the lock.
    func perform(_ effects: CloseEffects) {
        // Forgotten first: whoever a close wakes sees the registry without the channel.
        if effects.forget { connection.forget(self) }
        for (receiver, error) in effects.receivers { receiver.resume(.failure(error)) }
        for sender in effects.senders {
            sender.resume(.failure(ExecnetError(.invalidState, "channel \(id) closed while sending",
                                                gatewayID: gatewayID, channelID: id)))
        }
        if effects.scheduleEnd { scheduleEndmarker() }
        for (waiter, result) in effects.closeWaiters { waiter.resume(result) }
    }

    // MARK: - From the peer (I/O thread)

    /// What `deliver` leaves to do after unlocking.
    private enum Delivery {
        case none
        case afterEnd
        /// The peer sent beyond its window: it is lying about flow control.
        case violation
        case handOff(ReceiveWaiter, grant: (messages: Int, bytes: Int)?)
        case direct(grant: (messages: Int, bytes: Int)?, failure: (any Error)?)
        /// Queued while someone waits for the close: granted back at once.
        case drained((messages: Int, bytes: Int)?)
    }

    /// An item arrived from the peer.
    func deliver(_ payload: [UInt8]) {
        let delivery = core.state.withLock { state -> Delivery in
            if state.remoteClosed {
                // The peer broke protocol (an item after its close), or it ended.
                return .afterEnd
            }
            if state.localClosed {
                // This side closed it: the user no longer wants items (the peer may not know yet).
                return .none
            }
            guard state.noteArrival(bytes: payload.count) else { return .violation }
            if let registration = state.callback {
                if registration.direct {
                    // Under the lock, so items keep arrival order against the replay in `register`.
                    let grant = state.consume(bytes: payload.count)
                    return .direct(grant: grant, failure: runDirectCallback(payload, registration))
                }
                if state.replaying {
                    // `setCallback` is still replaying earlier items on its caller's thread.
                    state.items.append(payload)
                    return .none
                }
                // Submitted under the lock so callback order is arrival order.
                submitCallbackItem(payload, registration)
                return .none
            }
            if let receiver = state.receivers.popFirst() {
                return .handOff(receiver, grant: state.consume(bytes: payload.count))
            }
            state.items.append(payload)
            return state.draining ? .drained(state.drainArrival(bytes: payload.count)) : .none
        }
        switch delivery {
        case .none:
            break
        case .violation:
            connection.reportViolation("protocol violation: the peer sent beyond the flow-control window on channel \(id)")
        case .afterEnd:
            connection.rogue.warning("dropped DATA on a channel that had ended", "channel \(id) from \(gatewayID)")
        case .drained(let grant):
            sendCredit(grant)
        case .handOff(let receiver, let grant):
            sendCredit(grant)
            receiver.resume(.success(payload))
        case .direct(let grant, let failure):
            sendCredit(grant)
            if let failure {
                connection.logger.debug("callback on channel \(id) threw: \(failure)")
                closeLocally(error: "callback on channel \(id) raised: \(failure)")
            }
        }
    }

    /// Decodes an item and runs a direct callback on it; returns what it threw. Lock held.
    private func runDirectCallback(_ payload: [UInt8], _ registration: CallbackRegistration) -> (any Error)? {
        do {
            try registration.callback(try connection.decode(payload))
            return nil
        } catch {
            // Logged by the caller, after unlocking (a log handler is the user's code).
            return error
        }
    }

    /// The peer closed the channel, with an error or without.
    ///
    /// - Parameter reply: Send this side's own close if it has not gone yet (the peer forgets the
    ///   channel only once it has it). `false` when the peer is gone.
    func remoteClosed(error: RemoteError?, cause: PeerEnd? = nil, reply: Bool) {
        let effects = core.state.withLock { state -> CloseEffects? in
            if state.remoteClosed { return nil }
            state.remoteClosed = true
            if !state.localClosed {
                state.pendingError = error
                state.endCause = cause
            }
            let notify = reply && !state.closeSent
            if notify { state.closeSent = true }
            return takeCloseEffects(&state, notifyPeer: notify)
        }
        guard let effects else {
            // Logged outside the lock: a log handler is code of the user's.
            if reply { connection.logger.warning("dropped a second close of channel \(id) from \(gatewayID)") }
            return
        }
        if effects.notifyPeer { connection.send(WireMessage(channelID: id, type: .close, payload: [])) }
        perform(effects)
    }

    /// The peer (its worker) is gone: the channel ends with `cause` unless it already ended.
    func markPeerEnded(_ cause: PeerEnd?) {
        remoteClosed(error: nil, cause: cause, reply: false)
    }

    /// Ends a channel that is not registered and will never be (a channel value naming a channel
    /// of this side that is no longer open).
    func endDetached() {
        core.state.withLock { state in
            state.localClosed = true
            state.remoteClosed = true
            state.closeSent = true
        }
    }

    /// The peer consumed items and granted more window.
    func grantCredit(messages: Int, bytes: Int) {
        let outcome = core.state.withLock { $0.grant(messages: messages, bytes: bytes) }
        for sender in outcome.wake { sender.resume(.success(())) }
    }

    // MARK: - Callbacks

    /// Queues one item for the callback thread. Called with the state lock held.
    private func submitCallbackItem(_ payload: [UInt8], _ registration: CallbackRegistration) {
        SerialWorkQueue.callbacks.submit { [self] in
            let (run, grant) = core.state.withLock { state -> (Bool, (messages: Int, bytes: Int)?) in
                if state.localClosed { return (false, nil) }
                return (true, state.remoteClosed ? nil : state.consume(bytes: payload.count))
            }
            sendCredit(grant)
            guard run else { return }
            do {
                try registration.callback(try connection.decode(payload))
            } catch {
                connection.logger.debug("callback on channel \(id) threw: \(error)")
                closeLocally(error: "callback on channel \(id) raised: \(error)")
            }
        }
    }

    /// Queues the endmarker step: deliver the endmarker once, then count the channel as closed.
    /// A direct callback gets it at once, on this thread. Never call it with the lock held.
    private func scheduleEndmarker() {
        let direct = core.state.withLock { $0.callback?.direct ?? false }
        if direct {
            runEndmarkerStep()
        } else {
            SerialWorkQueue.callbacks.submit { [self] in runEndmarkerStep() }
        }
    }

    /// Delivers the endmarker once, then counts the channel as closed and wakes close waiters.
    private func runEndmarkerStep() {
        let registration = core.state.withLock { state -> CallbackRegistration? in
            if state.endmarkerDelivered { return nil }
            state.endmarkerDelivered = true
            return state.callback
        }
        if let registration, let endmarker = registration.endmarker {
            do { try registration.callback(endmarker) } catch {
                connection.logger.debug("endmarker callback on channel \(id) threw: \(error)")
            }
        }
        registration?.onEnd?()
        let waiters = core.state.withLock { state -> [(CloseWaiter, Result<Void, any Error>)] in
            state.callbackDrained = true
            // Nothing arrives after the end: drop the closures, which often capture this channel.
            state.callback = state.callback?.spent
            return takeCloseWaiters(&state)
        }
        for (waiter, result) in waiters { waiter.resume(result) }
    }

    /// Registers a callback that receives every item, on the callback thread, in order.
    ///
    /// Items that already arrived are delivered to it on the calling thread before this returns
    /// (and the endmarker too, if the channel has already ended), as execnet does; later items
    /// arrive on the callback thread. Afterwards ``receive(timeout:)`` is refused. Callbacks must not block for long: they share one thread. A callback that throws
    /// closes the channel with an error that the other side receives.
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

    package func register(_ registration: CallbackRegistration) throws {
        let (ended, grant, failure) = try core.state.withLock { state -> (Bool, (messages: Int, bytes: Int)?, (any Error)?) in
            if state.callback != nil {
                throw ExecnetError(.invalidState, "channel \(id) already has a callback",
                                   gatewayID: gatewayID, channelID: id)
            }
            state.callback = registration
            guard registration.direct else {
                // Queued items and the endmarker are delivered on this thread before
                // `setCallback` returns (as execnet does); see `replayQueued`.
                state.replaying = true
                return (false, nil, nil)
            }
            let queued = state.items
            state.items.removeAll()
            // Replayed under the lock, before any item the I/O thread delivers next.
            var grant: (messages: Int, bytes: Int)?
            var failure: (any Error)?
            for payload in queued where failure == nil {
                if !state.isEnded, let next = state.consume(bytes: payload.count) {
                    grant = (messages: (grant?.messages ?? 0) + next.messages, bytes: (grant?.bytes ?? 0) + next.bytes)
                }
                failure = runDirectCallback(payload, registration)
            }
            return (state.isEnded, grant, failure)
        }
        guard registration.direct else {
            replayQueued(registration)
            return
        }
        sendCredit(grant)
        if let failure {
            connection.logger.debug("callback on channel \(id) threw: \(failure)")
            closeLocally(error: "callback on channel \(id) raised: \(failure)")
        }
        if ended { runEndmarkerStep() }
    }

    /// Runs the callback on every queued item, then the endmarker if the channel has ended, on the
    /// caller's thread and outside the lock. Items arriving meanwhile queue behind (`replaying`),
    /// so order is arrival order; once the queue is empty, later items go to the callback thread.
    private func replayQueued(_ registration: CallbackRegistration) {
        while true {
            let (payload, grant, runEnd) = core.state.withLock { state -> ([UInt8]?, (messages: Int, bytes: Int)?, Bool) in
                if !state.localClosed, let payload = state.items.popFirst() {
                    return (payload, state.remoteClosed ? nil : state.consume(bytes: payload.count), false)
                }
                state.items.removeAll()
                state.replaying = false
                return (nil, nil, state.isEnded && !state.endmarkerDelivered)
            }
            sendCredit(grant)
            guard let payload else {
                if runEnd { runEndmarkerStep() }
                return
            }
            do {
                try registration.callback(try connection.decode(payload))
            } catch {
                connection.logger.debug("callback on channel \(id) threw: \(error)")
                closeLocally(error: "callback on channel \(id) raised: \(error)")
            }
        }
    }

    // MARK: - Waiting for the close

    /// Waits until the channel is closed.
    ///
    /// With a callback, this returns only after every item and the endmarker were delivered.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Throws: ``RemoteError`` if the peer closed with an error that was not yet reported;
    ///   ``ExecnetError`` `endOfChannel` with a ``PeerEnd`` cause if the peer went away without
    ///   closing (as execnet raises EOFError); `timeout`; `CancellationError`.
    public func waitClose(timeout: Duration? = nil) async throws {
        let waiterID = nextWaiterID()
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        let timer = TimerQueue.startWait(deadline, on: connection.transport.timers) { [self] in expireCloseWaiter(waiterID, timeout: timeout!) }
        defer { timer?.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate: Result<Void, any Error>? = core.state.withLock { state in
                    if state.isClosed { return closeOutcome(&state) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if let deadline, ContinuousClock.now >= deadline {
                        return .failure(ExecnetError(.timeout, "channel \(id) did not close within \(timeout!)",
                                                     gatewayID: gatewayID, channelID: id))
                    }
                    state.closeWaiters.append(.async(id: waiterID, continuation))
                    sendCredit(state.startDrain())
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            removeCloseWaiter(waiterID)?.resume(.failure(CancellationError()))
        }
    }

    /// Waits until the channel is closed, blocking the calling thread.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Throws: As ``waitClose(timeout:)``.
    /// - Important: Blocks the calling thread.
    @available(*, noasync, message: "blocks the calling thread; use waitClose(timeout:)")
    public func waitCloseBlocking(timeout: Duration? = nil) throws {
        try checkMayBlock()
        let waiterID = nextWaiterID()
        let outcome = BlockingOutcome<Void>()
        let immediate: Result<Void, any Error>? = core.state.withLock { state in
            if state.isClosed { return closeOutcome(&state) }
            state.closeWaiters.append(.blocking(id: waiterID, outcome))
            sendCredit(state.startDrain())
            return nil
        }
        if let immediate { return try immediate.get() }
        if let result = outcome.wait(deadline: timeout.map { ContinuousClock.now.advanced(by: $0) }) {
            return try result.get()
        }
        if removeCloseWaiter(waiterID) != nil {
            throw ExecnetError(.timeout, "channel \(id) did not close within \(timeout!)",
                               gatewayID: gatewayID, channelID: id)
        }
        try outcome.wait(deadline: nil)!.get()
    }

    private func removeCloseWaiter(_ waiterID: Int) -> CloseWaiter? {
        core.state.withLock { state -> CloseWaiter? in
            guard let index = state.closeWaiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
            defer { state.stopDrainIfUnwatched() }
            return state.closeWaiters.remove(at: index)
        }
    }

    private func expireCloseWaiter(_ waiterID: Int, timeout: Duration) {
        removeCloseWaiter(waiterID)?.resume(.failure(
            ExecnetError(.timeout, "channel \(id) did not close within \(timeout)", gatewayID: gatewayID, channelID: id)))
    }
}
