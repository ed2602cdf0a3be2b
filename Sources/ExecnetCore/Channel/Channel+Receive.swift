// Receiving on a channel: async and blocking receive with timeouts and cancellation. Async
// iteration and typed receive are on the handle (Channel.swift).

import ExecnetValue

extension ChannelCore {
    private enum Immediate {
        case item([UInt8], grant: (messages: Int, bytes: Int)?)
        case end(any Error)
        case wait
    }

    /// Takes an item or the end under the lock, or says the caller must wait.
    private func takeImmediate(_ state: inout ChannelState) throws -> Immediate {
        if state.callback != nil {
            throw ExecnetError(.invalidState, "channel \(id) has a callback; receive() is not allowed",
                               gatewayID: gatewayID, channelID: id)
        }
        if let item = state.items.popFirst() {
            let grant = state.isEnded ? nil : state.consume(bytes: item.count)  // no CREDIT after either close
            return .item(item, grant: grant)
        }
        if state.isEnded { return .end(endError(state.takeEnd())) }
        return .wait
    }

    func endError(_ end: ChannelEnd) -> any Error {
        switch end {
        case .remoteError(let error): error
        case .peerLost(let cause):
            ExecnetError(.endOfChannel, "channel \(id) has ended: \(cause.reason)", gatewayID: gatewayID, channelID: id,
                         cause: cause)
        case .endOfChannel:
            ExecnetError(.endOfChannel, "channel \(id) has ended", gatewayID: gatewayID, channelID: id)
        }
    }

    private func timeoutError(_ timeout: Duration) -> ExecnetError {
        ExecnetError(.timeout, "no item on channel \(id) within \(timeout)", gatewayID: gatewayID, channelID: id)
    }

    func sendCredit(_ grant: (messages: Int, bytes: Int)?) {
        guard let grant else { return }
        guard let payload = try? connection.encode(.tuple([.int(Int64(grant.messages)), .int(Int64(grant.bytes))]))
        else { return }
        connection.send(WireMessage(channelID: id, type: .credit, payload: payload))
    }

    /// The next item's payload if one is queued (or the end, thrown), without suspending: the
    /// common case of a busy channel needs no continuation, timer or cancellation handler.
    private func takeQueuedPayload() throws -> [UInt8]? {
        switch try state.withLock({ try takeImmediate(&$0) }) {
        case .item(let payload, let grant):
            sendCredit(grant)
            return payload
        case .end(let error):
            throw error
        case .wait:
            return nil
        }
    }

    /// Receives the next item's raw payload.
    nonisolated(nonsending) func receivePayload(timeout: Duration?) async throws -> [UInt8] {
        if let payload = try takeQueuedPayload() { return payload }
        let waiterID = nextWaiterID()
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        // The timer holds the channel only until it fires or is cancelled below. A weak capture would
        // give the channel a side table for good, and make every retain of it slower.
        let timer = TimerQueue.startWait(deadline, on: connection.transport.timers) { [self] in expireReceiver(waiterID, timeout: timeout!) }
        defer { timer?.cancel() }
        let payload: [UInt8] = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
                var grantToSend: (messages: Int, bytes: Int)?
                let immediate: Result<[UInt8], any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    do {
                        switch try takeImmediate(&state) {
                        case .item(let payload, let grant):
                            // Sent after unlocking: on the I/O thread the transport may act at
                            // once, and nothing is called out under a channel's lock.
                            grantToSend = grant
                            return .success(payload)
                        case .end(let error): return .failure(error)
                        case .wait: break
                        }
                    } catch {
                        return .failure(error)
                    }
                    if let deadline, ContinuousClock.now >= deadline { return .failure(timeoutError(timeout!)) }
                    state.receivers.append(.async(id: waiterID, continuation))
                    return nil
                }
                sendCredit(grantToSend)
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let removed = state.withLock { state -> ReceiveWaiter? in
                guard let index = state.receivers.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.receivers.remove(at: index)
            }
            removed?.resume(.failure(CancellationError()))
        }
        return payload
    }

    private func expireReceiver(_ waiterID: Int, timeout: Duration) {
        let removed = state.withLock { state -> ReceiveWaiter? in
            guard let index = state.receivers.firstIndex(where: { $0.id == waiterID }) else { return nil }
            return state.receivers.remove(at: index)
        }
        removed?.resume(.failure(timeoutError(timeout)))
    }

    /// Receives the next item (see ``Channel/receive(timeout:)``).
    nonisolated(nonsending) func receive(timeout: Duration? = nil) async throws -> Value {
        try connection.decode(try await receivePayload(timeout: timeout))
    }

    /// Receives the next item, blocking the calling thread.
    @available(*, noasync, message: "blocks the calling thread; use receive(timeout:)")
    func receiveBlocking(timeout: Duration? = nil) throws -> Value {
        try checkMayBlock()
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        let waiterID = nextWaiterID()
        let outcome = BlockingOutcome<[UInt8]>()
        var grantToSend: (messages: Int, bytes: Int)?
        let immediate: Result<[UInt8], any Error>? = state.withLock { state in
            do {
                switch try takeImmediate(&state) {
                case .item(let payload, let grant):
                    grantToSend = grant
                    return .success(payload)
                case .end(let error): return .failure(error)
                case .wait: break
                }
            } catch {
                return .failure(error)
            }
            state.receivers.append(.blocking(id: waiterID, outcome))
            return nil
        }
        sendCredit(grantToSend)
        if let immediate { return try connection.decode(immediate.get()) }
        if let result = outcome.wait(deadline: deadline) { return try connection.decode(result.get()) }
        let removed = state.withLock { state -> Bool in
            guard let index = state.receivers.firstIndex(where: { $0.id == waiterID }) else { return false }
            state.receivers.remove(at: index)
            return true
        }
        if removed { throw timeoutError(timeout!) }
        // Fulfilled between the timeout and the lock: the item is ours.
        return try connection.decode(outcome.wait(deadline: nil)!.get())
    }
}
