// gateway.call: typed calls over one persistent channel per gateway and task type. A direct
// callback on the channel hands each reply to the call waiting for its request id; when the channel ends
// (worker died, gateway exited), every waiting call fails with the channel's end error and the
// next call opens a new channel.

import ExecnetCore
import ExecnetValue
import Synchronization

extension Gateway {
    /// Calls the typed task `T` in this gateway's worker and returns its output.
    ///
    /// Calls of one task type share a persistent channel to this gateway; each carries a request
    /// id, so many calls may be in flight at once. Cancelling the calling task sends a cancel to the
    /// worker, which cancels the call's Swift `Task` there, and throws `CancellationError` here.
    ///
    /// - Parameters:
    ///   - task: The task type (registered in the worker with ``TaskRegistry/register(_:_:)-(T.Type,_)``).
    ///   - input: The call's input.
    /// - Returns: The task's output.
    /// - Throws: ``RemoteTaskError`` if the task threw in the worker; ``UnknownTaskError`` if the
    ///   worker has no task `T.name`; `DecodingError` or
    ///   `EncodingError` if the output or input does not convert; ``ExecnetError`` if the worker
    ///   died (`.endOfChannel`, its ``ExecnetError/peerEnd`` gives the cause) or the gateway is unusable; `CancellationError` if cancelled.
    public func call<T: TypedTask>(_ task: T.Type, _ input: T.Input) async throws -> T.Output {
        let encoded = try ValueEncoder().encode(input)
        let output = try await TypedCaller.shared(for: self, taskName: T.name).call(encoded)
        return try ValueDecoder().decode(T.Output.self, from: output)
    }

    /// Calls the typed task `T` once for a chunk of inputs (one message each way); the worker runs
    /// them one after another. Each input gets its own result: its output, its ``RemoteTaskError``,
    /// or its conversion error. Errors of the whole call (a lost worker, an unknown task) are thrown.
    func callChunk<T: TypedTask>(_ task: T.Type, _ inputs: [T.Input]) async throws -> [Result<T.Output, any Error>] {
        let encoder = ValueEncoder()
        var encoded: [Value] = []
        var failed: [Int: any Error] = [:]
        for (position, input) in inputs.enumerated() {
            do { encoded.append(try encoder.encode(input)) } catch { failed[position] = error }
        }
        let caller = try TypedCaller.shared(for: self, taskName: T.name)
        let replies = encoded.isEmpty ? [] : try await caller.callChunk(encoded)
        var results: [Result<T.Output, any Error>] = []
        var next = replies.makeIterator()
        for position in inputs.indices {
            if let error = failed[position] {
                results.append(.failure(error))
                continue
            }
            switch next.next()! {
            case .success(let output):
                results.append(Result { try ValueDecoder().decode(T.Output.self, from: output) })
            case .failure(let error):
                results.append(.failure(error))
            }
        }
        return results
    }
}

/// One call waiting for its reply: filled once, by the reply, the channel's end or cancellation.
///
/// An unsafe continuation: the state machine under the lock resumes it exactly once (a checked one
/// would allocate a canary per call).
final class ReplySlot: Sendable {
    private enum State {
        case empty
        case waiting(UnsafeContinuation<Value, any Error>)
        case done(Result<Value, any Error>)
        case consumed
    }
    private let state = Mutex(State.empty)

    /// Fills the slot; later fills are ignored (a reply after cancellation, say).
    func fill(_ result: Result<Value, any Error>) {
        let continuation = state.withLock { state -> UnsafeContinuation<Value, any Error>? in
            switch state {
            case .empty:
                state = .done(result)
                return nil
            case .waiting(let continuation):
                state = .consumed
                return continuation
            case .done, .consumed:
                return nil
            }
        }
        continuation?.resume(with: result)
    }

    /// Waits for the slot to be filled.
    func wait() async throws -> Value {
        try await withUnsafeThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<Value, any Error>? in
                if case .done(let result) = state {
                    state = .consumed
                    return result
                }
                state = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// The client side of one typed task's persistent channel to one gateway.
final class TypedCaller: Sendable {
    private struct State {
        var nextID: Int64 = 1
        var pending: [Int64: ReplySlot] = [:]
        /// Why the channel ended; set once, after which no call is accepted.
        var ended: (any Error)?
    }

    let channel: Channel
    let taskName: String
    let gatewayID: String
    private let state = Mutex(State())
    /// The reader; it ends when the channel ends.
    private let reader = Mutex<Task<Void, Never>?>(nil)

    private init(channel: Channel, taskName: String, gatewayID: String) {
        self.channel = channel
        self.taskName = taskName
        self.gatewayID = gatewayID
    }

    /// The live caller for `gateway` and `taskName`, opening its channel if there is none. The
    /// gateway keeps its callers (one lock and a lookup by name per call); an ended one is replaced.
    static func shared(for gateway: Gateway, taskName: String) throws -> TypedCaller {
        try gateway.typedCallers.withLock { callers in
            if let caller = callers[taskName], !caller.hasEnded { return caller }
            let channel = try gateway.remoteExec(taskName, arguments: [])
            let caller = TypedCaller(channel: channel, taskName: taskName, gatewayID: gateway.id)
            try caller.startReader()
            callers[taskName] = caller
            return caller
        }
    }

    var hasEnded: Bool { state.withLock { $0.ended != nil } }

    private func startReader() throws {
        // Replies are handed to their calls by a direct callback, on the thread that delivers
        // them (no hop through a reader task); it takes only this caller's and the slot's locks.
        try channel.register(CallbackRegistration(
            callback: { [self] item in deliver(item) }, endmarker: nil, direct: true))
        let task = Task { [self] in
            var end: any Error = ExecnetError(.endOfChannel, "typed task '\(taskName)' channel ended",
                                              gatewayID: gatewayID, channelID: channel.id)
            do {
                // Returns after every reply was delivered; says why the channel ended (a dead
                // worker's end carries its cause, a PeerEnd).
                try await channel.waitClose()
            } catch {
                // A worker without the task closes the channel with an error naming it.
                end = UnknownTaskError.from(error, taskName: taskName, gatewayID: gatewayID) ?? error
            }
            let orphans = state.withLock { state -> [ReplySlot] in
                state.ended = end
                defer { state.pending = [:] }
                return Array(state.pending.values)
            }
            for slot in orphans { slot.fill(.failure(end)) }
        }
        reader.withLock { $0 = task }
    }

    /// Hands one reply to the call waiting for it; anything else is ignored (a broken peer's
    /// message, or a reply to a call that was cancelled).
    private func deliver(_ item: Value) {
        guard let message = try? TypedTaskMessage(item) else { return }
        switch message {
        case .ok(let id, let output):
            take(id)?.fill(.success(output))
        case .err(let id, let typeName, let text):
            take(id)?.fill(.failure(RemoteTaskError(
                taskName: taskName, gatewayID: gatewayID, typeName: typeName, message: text)))
        case .results(let id, let results):
            take(id)?.fill(.success(.list(results)))
        case .call, .calls, .cancel, .stream, .item, .end:
            break
        }
    }

    /// Why the channel ended, once the reader has seen its end (a send that failed because the
    /// channel is closed waits for it, so the call fails with the real cause, not "closed").
    private func endError(after sendError: any Error) async -> any Error {
        guard let closed = sendError as? ExecnetError, closed.code == .invalidState else { return sendError }
        await reader.withLock { $0 }?.value
        return state.withLock { $0.ended } ?? sendError
    }

    private func take(_ id: Int64) -> ReplySlot? {
        state.withLock { $0.pending.removeValue(forKey: id) }
    }

    /// Sends one call and waits for its reply.
    func call(_ input: Value) async throws -> Value {
        try Task.checkCancellation()
        let slot = ReplySlot()
        let id = try register(slot)
        return try await send(TypedTaskMessage.call(id: id, input: input), slot: slot, id: id)
    }

    /// Sends one chunk of calls and waits for its results, one per input.
    func callChunk(_ inputs: [Value]) async throws -> [Result<Value, RemoteTaskError>] {
        try Task.checkCancellation()
        let slot = ReplySlot()
        let id = try register(slot)
        let reply = try await send(TypedTaskMessage.calls(id: id, inputs: inputs), slot: slot, id: id)
        guard case .list(let items) = reply, items.count == inputs.count else {
            throw TypedTaskProtocolError(description: "chunk reply of \(taskName) does not hold one result per input: \(reply)")
        }
        return try items.map { item in
            guard case .tuple(let parts) = item, let kind = parts.first else {
                throw TypedTaskProtocolError(description: "malformed chunk result: \(item)")
            }
            switch (kind, parts.count) {
            case ("ok", 2): return .success(parts[1])
            case ("err", 3):
                guard case .string(let typeName) = parts[1], case .string(let message) = parts[2] else { fallthrough }
                return .failure(RemoteTaskError(taskName: taskName, gatewayID: gatewayID, typeName: typeName, message: message))
            default:
                throw TypedTaskProtocolError(description: "malformed chunk result: \(item)")
            }
        }
    }

    private func register(_ slot: ReplySlot) throws -> Int64 {
        try state.withLock { state in
            if let ended = state.ended { throw ended }
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = slot
            return id
        }
    }

    /// Sends `message` (whose reply goes to `slot` under `id`) and waits for the reply.
    private func send(_ message: TypedTaskMessage, slot: ReplySlot, id: Int64) async throws -> Value {
        do {
            try await channel.send(message.value)
        } catch {
            _ = take(id)
            throw await endError(after: error)
        }
        return try await withTaskCancellationHandler {
            try await slot.wait()
        } onCancel: {
            guard take(id) != nil else { return }
            slot.fill(.failure(CancellationError()))
            let channel = self.channel
            Task { try? await channel.send(TypedTaskMessage.cancel(id: id).value) }
        }
    }
}
