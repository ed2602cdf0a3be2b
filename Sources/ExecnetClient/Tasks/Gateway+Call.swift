// gateway.call: typed calls over one persistent channel per gateway and task type. A reader task
// per channel hands each reply to the call waiting for its request id; when the channel ends
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
    /// - Throws: ``RemoteTaskError`` if the task threw in the worker; `DecodingError` or
    ///   `EncodingError` if the output or input does not convert; ``ExecnetError`` if the worker
    ///   died (`.endOfChannel`, its ``ExecnetError/peerEnd`` gives the cause) or the gateway is unusable; `CancellationError` if cancelled.
    public func call<T: TypedTask>(_ task: T.Type, _ input: T.Input) async throws -> T.Output {
        let encoded = try ValueEncoder().encode(input)
        let output = try await TypedCaller.shared(for: self, taskName: T.name).call(encoded)
        return try ValueDecoder().decode(T.Output.self, from: output)
    }
}

/// One call waiting for its reply: filled once, by the reply, the channel's end or cancellation.
final class ReplySlot: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Value, any Error>)
        case done(Result<Value, any Error>)
        case consumed
    }
    private let state = Mutex(State.empty)

    /// Fills the slot; later fills are ignored (a reply after cancellation, say).
    func fill(_ result: Result<Value, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<Value, any Error>? in
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
        try await withCheckedThrowingContinuation { continuation in
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

    private init(channel: Channel, taskName: String, gatewayID: String) {
        self.channel = channel
        self.taskName = taskName
        self.gatewayID = gatewayID
    }

    private struct Key: Hashable {
        let gateway: ObjectIdentifier
        let taskName: String
    }

    private struct Entry {
        weak var gateway: Gateway?
        let caller: TypedCaller
    }

    /// Callers by gateway and task; entries of ended channels or gone gateways are dropped.
    private static let cache = Mutex<[Key: Entry]>([:])

    /// The live caller for `gateway` and `taskName`, opening its channel if there is none.
    static func shared(for gateway: Gateway, taskName: String) throws -> TypedCaller {
        let key = Key(gateway: ObjectIdentifier(gateway), taskName: taskName)
        return try cache.withLock { cache in
            if let entry = cache[key], entry.gateway === gateway, !entry.caller.hasEnded { return entry.caller }
            cache = cache.filter { $0.value.gateway != nil && !$0.value.caller.hasEnded }
            let channel = try gateway.remoteExec(taskName, arguments: [])
            let caller = TypedCaller(channel: channel, taskName: taskName, gatewayID: gateway.id)
            caller.startReader()
            cache[key] = Entry(gateway: gateway, caller: caller)
            return caller
        }
    }

    var hasEnded: Bool { state.withLock { $0.ended != nil } }

    private func startReader() {
        Task { [self] in
            var end: any Error = ExecnetError(.endOfChannel, "typed task '\(taskName)' channel ended",
                                              gatewayID: gatewayID, channelID: channel.id)
            do {
                for try await item in channel {
                    guard let message = try? TypedTaskMessage(item) else { continue }
                    switch message {
                    case .ok(let id, let output):
                        take(id)?.fill(.success(output))
                    case .err(let id, let typeName, let text):
                        take(id)?.fill(.failure(RemoteTaskError(
                            taskName: taskName, gatewayID: gatewayID, typeName: typeName, message: text)))
                    case .call, .cancel:
                        continue
                    }
                }
                // Iteration ends quietly at the end of the channel; waitClose says why (a dead
                // worker's end carries its cause, a PeerEnd).
                try await channel.waitClose()
            } catch {
                end = error
            }
            let orphans = state.withLock { state -> [ReplySlot] in
                state.ended = end
                defer { state.pending = [:] }
                return Array(state.pending.values)
            }
            for slot in orphans { slot.fill(.failure(end)) }
        }
    }

    private func take(_ id: Int64) -> ReplySlot? {
        state.withLock { $0.pending.removeValue(forKey: id) }
    }

    /// Sends one call and waits for its reply.
    func call(_ input: Value) async throws -> Value {
        try Task.checkCancellation()
        let slot = ReplySlot()
        let id: Int64 = try state.withLock { state in
            if let ended = state.ended { throw ended }
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = slot
            return id
        }
        do {
            try await channel.send(TypedTaskMessage.call(id: id, input: input).value)
        } catch {
            _ = take(id)
            throw error
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
