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
    /// The worker runs each call as a Swift `Task` of its own, so calls on one channel run
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
}

/// The worker's loop for one typed task channel.
private func serveTypedCalls<T: TypedTask>(
    _ type: T.Type, context: TaskContext, _ body: @escaping @Sendable (T.Input, TypedTaskContext) async throws -> T.Output
) async throws {
    let channel = context.channel
    let running = RunningCalls()
    do {
        for try await item in channel {
            let message: TypedTaskMessage
            do {
                message = try TypedTaskMessage(item)
            } catch {
                // An id we can read gets an error reply; anything else is dropped (logged by nobody:
                // the peer is broken, and the channel stays usable for well-formed calls).
                if case .tuple(let parts) = item, parts.count >= 2, case .int(let id) = parts[1] {
                    try? await channel.send(TypedTaskMessage.err(
                        id: id, typeName: "TypedTaskProtocolError", message: "\(error)").value)
                }
                continue
            }
            switch message {
            case .call(let id, let input):
                // Bound the calls running at once: wait for the oldest before starting more.
                let oldest: Task<Void, Never>? = running.calls.withLock { tasks in
                    tasks.count >= TaskRegistry.typedCallsPerChannel ? tasks.min { $0.key < $1.key }?.value : nil
                }
                if let oldest { await oldest.value }
                let started = running.calls.withLock { tasks -> Bool in
                    if tasks[id] != nil { return false }
                    // Created under the lock, so the call's own removal cannot run before this insertion.
                    tasks[id] = Task {
                        let reply: TypedTaskMessage
                        do {
                            let decoded = try ValueDecoder().decode(T.Input.self, from: input)
                            let output = try await body(decoded, TypedTaskContext(gatewayID: context.gatewayID, requestID: id))
                            reply = .ok(id: id, output: try ValueEncoder().encode(output))
                        } catch {
                            reply = .err(id: id, typeName: String(reflecting: Swift.type(of: error)), message: "\(error)")
                        }
                        try? await channel.send(reply.value)
                        _ = running.calls.withLock { $0.removeValue(forKey: id) }
                    }
                    return true
                }
                if !started {
                    try? await channel.send(TypedTaskMessage.err(
                        id: id, typeName: "TypedTaskProtocolError", message: "request id \(id) is already running").value)
                }
            case .cancel(let id):
                running.calls.withLock { $0[id] }?.cancel()
            case .ok, .err:
                continue
            }
        }
    } catch {
        // The client went away or closed with an error: the calls are cancelled below.
    }
    let tasks = running.calls.withLock { $0 }
    for task in tasks.values { task.cancel() }
    for task in tasks.values { await task.value }
}

/// The calls of one typed task channel that are running in the worker, by request id.
private final class RunningCalls: Sendable {
    let calls = Mutex<[Int64: Task<Void, Never>]>([:])
}
