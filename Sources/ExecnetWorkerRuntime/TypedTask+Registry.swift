// The worker's side of typed tasks (ExecnetCore's Tasks/TypedTask.swift has the protocol and the
// messages): registering a typed task and serving its calls, several in flight per channel.

import ExecnetCore
import ExecnetValue
import Synchronization

extension TaskRegistry {
    /// How many calls of one typed task may run at once on one channel; beyond it the worker stops
    /// reading the channel (flow control then holds the client back).
    static let typedCallsPerChannel = 1024

    /// Registers a typed task under `T.name`.
    ///
    /// The worker runs each call as a Swift task of its own (a child of the channel's loop), so calls on one channel run
    /// concurrently. A `("cancel", id)` message or the client closing the channel cancels the
    /// call's `Task`. A thrown error reaches the caller as ``RemoteTaskError``. Malformed messages
    /// are answered with an error reply when they carry an id, and otherwise ignored.
    ///
    /// - Parameters:
    ///   - type: The task type.
    ///   - body: The task: takes the decoded input, returns the output.
    public mutating func register<T: TypedTask>(
        _ type: T.Type, _ body: @escaping @Sendable (T.Input, TypedTaskContext) async throws -> T.Output
    ) {
        register(T.name) { context in
            try await serveTypedCalls(T.self, context: context, body)
        }
    }

    /// Registers a typed task under `T.name` whose calls run on the worker's I/O thread.
    ///
    /// As ``register(_:_:)-(T.Type,_)``, but the channel loop and every call run on the I/O thread
    /// (as ``registerOnIOThread(_:_:)-(String,_)`` does for a channel task): a call costs no thread
    /// hand-off. Only for bodies that return quickly and never block: while one runs, the worker
    /// moves no messages.
    ///
    /// - Parameters:
    ///   - type: The task type.
    ///   - body: The task: takes the decoded input, returns the output.
    public mutating func registerOnIOThread<T: TypedTask>(
        _ type: T.Type, _ body: @escaping @Sendable (T.Input, TypedTaskContext) async throws -> T.Output
    ) {
        registerOnIOThread(T.name) { context in
            try await serveTypedCalls(T.self, context: context, body)
        }
    }
}

/// The worker's loop for one typed task channel. Each call runs as a child task of the loop (so it
/// runs where the loop runs: the cooperative pool, or the I/O thread for
/// ``TaskRegistry/registerOnIOThread(_:_:)-(T.Type,_)``); a `cancel` message cancels that child.
private func serveTypedCalls<T: TypedTask>(
    _ type: T.Type, context: TaskContext, _ body: @escaping @Sendable (T.Input, TypedTaskContext) async throws -> T.Output
) async throws {
    let channel = context.channel
    let running = RunningCalls()
    await withDiscardingTaskGroup { group in
        do {
            for try await item in channel {
                let message: TypedTaskMessage
                do {
                    message = try TypedTaskMessage(item)
                } catch {
                    // An id we can read gets an error reply; anything else is dropped (the peer is
                    // broken, and the channel stays usable for well-formed calls).
                    if case .tuple(let parts) = item, parts.count >= 2, case .int(let id) = parts[1] {
                        try? await channel.send(TypedTaskMessage.err(
                            id: id, typeName: "TypedTaskProtocolError", message: "\(error)").value)
                    }
                    continue
                }
                let work: (id: Int64, inputs: [Value], chunked: Bool)
                switch message {
                case .call(let id, let input): work = (id, [input], false)
                case .calls(let id, let inputs): work = (id, inputs, true)
                case .cancel(let id):
                    running.cancel(id)
                    continue
                case .ok, .err, .results, .stream, .item, .end:
                    continue
                }
                // Bound the calls running at once: stop reading until one ends (no suspension
                // while there is room, the common case).
                if !running.hasRoom(TaskRegistry.typedCallsPerChannel) {
                    await running.waitForRoom(TaskRegistry.typedCallsPerChannel)
                }
                guard running.reserve(work.id) else {
                    try? await channel.send(TypedTaskMessage.err(
                        id: work.id, typeName: "TypedTaskProtocolError", message: "request id \(work.id) is already running").value)
                    continue
                }
                group.addTask {
                    running.started(work.id)
                    defer { running.finished(work.id) }
                    let reply = await runTypedCall(T.self, work, gatewayID: context.gatewayID, body)
                    try? await channel.send(reply.value)
                }
            }
        } catch {
            // The client went away or closed with an error: the calls are cancelled below.
        }
        // The channel ended: every running call is cancelled (the group then waits for them).
        group.cancelAll()
    }
}

/// Runs one call or chunk and makes its reply.
private func runTypedCall<T: TypedTask>(
    _ type: T.Type, _ work: (id: Int64, inputs: [Value], chunked: Bool), gatewayID: String,
    _ body: @Sendable (T.Input, TypedTaskContext) async throws -> T.Output
) async -> TypedTaskMessage {
    let typedContext = TypedTaskContext(gatewayID: gatewayID, requestID: work.id)
    if !work.chunked, work.inputs.count == 1 {
        // One call: no list of results to build.
        do {
            let decoded = try ValueDecoder().decode(T.Input.self, from: work.inputs[0])
            let output = try await body(decoded, typedContext)
            return .ok(id: work.id, output: try ValueEncoder().encode(output))
        } catch {
            return .err(id: work.id, typeName: String(reflecting: Swift.type(of: error)), message: "\(error)")
        }
    }
    var results: [Result<Value, RemoteTaskError>] = []
    // A chunk's inputs run one after another; cancellation ends the chunk early (the client no
    // longer waits for its reply).
    for input in work.inputs where !Task.isCancelled || results.isEmpty {
        do {
            let decoded = try ValueDecoder().decode(T.Input.self, from: input)
            let output = try await body(decoded, typedContext)
            results.append(.success(try ValueEncoder().encode(output)))
        } catch {
            results.append(.failure(RemoteTaskError(
                taskName: T.name, gatewayID: gatewayID,
                typeName: String(reflecting: Swift.type(of: error)), message: "\(error)")))
        }
    }
    if work.chunked { return .results(id: work.id, results: results.map(TypedTaskMessage.chunkResult)) }
    return switch results[0] {
    case .success(let output): .ok(id: work.id, output: output)
    case .failure(let error): .err(id: work.id, typeName: error.typeName, message: error.message)
    }
}

/// A running call's task, kept only to cancel it from the channel's loop.
///
/// `UnsafeCurrentTask.cancel()` may be called from another task; the handle is used only while its
/// task is alive (see ``RunningCalls``), hence the unchecked conformance.
private struct CallHandle: @unchecked Sendable {
    let task: UnsafeCurrentTask
}

/// The calls of one typed task channel that are running in the worker, by request id.
private final class RunningCalls: Sendable {
    private struct State {
        /// Reserved ids; a call's task handle once it started (to cancel it by id).
        var calls: [Int64: CallHandle?] = [:]
        /// Ids cancelled before their task started.
        var cancelledEarly: Set<Int64> = []
        var roomWaiter: CheckedContinuation<Void, Never>?
        var limit = Int.max
    }
    private let state = Mutex(State())

    /// Reserves `id`; `false` if a call of that id is running.
    func reserve(_ id: Int64) -> Bool {
        state.withLock { state in
            if state.calls[id] != nil { return false }
            state.calls[id] = .some(nil)
            return true
        }
    }

    /// The call's child task started: record it so that a cancel message can reach it.
    func started(_ id: Int64) {
        guard let handle = withUnsafeCurrentTask(body: { $0.map(CallHandle.init) }) else { return }
        let cancelNow = state.withLock { state -> Bool in
            state.calls[id] = .some(handle)
            return state.cancelledEarly.remove(id) != nil
        }
        if cancelNow { handle.task.cancel() }
    }

    /// The call ended: forget it (before its task ends, so `cancel` never sees a finished task).
    func finished(_ id: Int64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.calls.removeValue(forKey: id)
            state.cancelledEarly.remove(id)
            guard state.calls.count < state.limit else { return nil }
            defer { state.roomWaiter = nil }
            return state.roomWaiter
        }
        waiter?.resume()
    }

    /// Cancels call `id`'s task if it runs (a cancel message).
    func cancel(_ id: Int64) {
        state.withLock { state in
            guard let entry = state.calls[id] else { return }
            // `cancel` is safe from another task, and the task is alive while it is recorded
            // (it removes itself, under this lock, before it ends).
            if let handle = entry { handle.task.cancel() } else { state.cancelledEarly.insert(id) }
        }
    }

    /// Whether fewer than `limit` calls run.
    func hasRoom(_ limit: Int) -> Bool {
        state.withLock { $0.calls.count < limit }
    }

    /// Waits until fewer than `limit` calls run.
    func waitForRoom(_ limit: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                state.limit = limit
                if state.calls.count < limit { return true }
                state.roomWaiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
