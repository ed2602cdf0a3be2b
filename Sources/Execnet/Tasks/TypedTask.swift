// Typed tasks: a task type names itself and declares a Codable input and output; a worker
// registers it by type and a client calls it with `gateway.call`. Calls of one task type share a
// persistent channel per gateway, each call carrying a request id so several may be in flight.
//
// Wire format (plain execnet values, so a Python peer can speak it) on the task's channel:
//   client -> worker  ("call", id, input)     start a call
//                     ("cancel", id)          cancel a running call
//                     ("calls", id, [input, ...])   start a chunk: the inputs run one after another
//   worker -> client  ("ok", id, output)      the call returned
//                     ("err", id, type, text) the call threw (`type` is the Swift type name)
//                     ("results", id, [("ok", output) | ("err", type, text), ...])   a chunk's results
// Closing the channel cancels every running call of it.
//
// A streaming task (StreamingTypedTask, TypedStream.swift) gets a channel per call:
//   client -> worker  ("stream", id, input)
//   worker -> client  ("item", id, output) ..., then ("end", id) or ("err", id, type, text)

import Synchronization

/// A task with a name, a typed input and a typed output, callable with ``Gateway/call(_:_:)``.
///
/// Declare the type in code both the client and the worker compile; register it in the worker with
/// ``TaskRegistry/register(_:_:)-(T.Type,_)``. Inputs and outputs travel as execnet ``Value``s
/// (through ``ValueEncoder`` and ``ValueDecoder``), so a Python peer can read them.
///
/// ```swift
/// enum Square: TypedTask {
///     typealias Input = Int
///     typealias Output = Int
///     static let name = "square"
/// }
/// ```
public protocol TypedTask: SendableMetatype {
    /// What a call takes.
    associatedtype Input: Codable & Sendable
    /// What a call returns.
    associatedtype Output: Codable & Sendable
    /// The name the task is registered under in the worker (defaults to the type's name).
    static var name: String { get }
    /// Whether ``Group/map(_:_:inFlightPerGateway:chunkSize:ordered:maxAttempts:timeLimit:replaceDeadGateways:)-(T.Type,Inputs,_,_,_,_,_,_)``
    /// may run an input again after the task threw `error` (defaults to `false`: a task's errors are final).
    static func isRetryable(_ error: RemoteTaskError) -> Bool
}

extension TypedTask {
    /// The type's name, as written in the source (`String(describing:)`).
    public static var name: String { String(describing: Self.self) }

    /// No task error is retryable unless the type says so.
    public static func isRetryable(_ error: RemoteTaskError) -> Bool { false }
}

/// What a typed task's body receives besides its input.
public struct TypedTaskContext: Sendable {
    /// The gateway id the client gave this worker.
    public let gatewayID: String
    /// The call's request id on its channel.
    public let requestID: Int64
}

/// The error a typed call throws when the task threw in the worker.
///
/// Carries the remote error's Swift type name and its description. Errors of the connection itself
/// (the worker died, the gateway exited) are not this type: they arrive as ``ExecnetError``
/// (`.endOfChannel` with a ``PeerEnd`` cause), so callers (and ``Group/map(_:_:inFlightPerGateway:chunkSize:ordered:maxAttempts:timeLimit:replaceDeadGateways:)-(T.Type,Inputs,_,_,_,_,_,_)``)
/// can tell a task's failure from a lost worker.
public struct RemoteTaskError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The task's name.
    public let taskName: String
    /// The gateway that ran the call.
    public let gatewayID: String
    /// The remote error's type name (`String(reflecting: type(of: error))` in the worker).
    public let typeName: String
    /// The remote error's description.
    public let message: String

    /// Creates a remote task error.
    ///
    /// - Parameters:
    ///   - taskName: The task's name.
    ///   - gatewayID: The gateway that ran the call.
    ///   - typeName: The remote error's type name.
    ///   - message: The remote error's description.
    public init(taskName: String, gatewayID: String, typeName: String, message: String) {
        self.taskName = taskName
        self.gatewayID = gatewayID
        self.typeName = typeName
        self.message = message
    }

    public var description: String {
        "RemoteTaskError on \(gatewayID) in task '\(taskName)': \(typeName): \(message)"
    }
}

/// The error a typed call throws when the worker has no task of that name.
///
/// The worker refused the task's channel (it closed it with an error); the worker itself is alive,
/// so ``Group/map(_:_:inFlightPerGateway:chunkSize:ordered:maxAttempts:timeLimit:replaceDeadGateways:)-(T.Type,Inputs,_,_,_,_,_,_)``
/// fails the input for good instead of counting a lost worker.
public struct UnknownTaskError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The task's name.
    public let taskName: String
    /// The gateway whose worker refused it.
    public let gatewayID: String
    /// The worker's text (it names the tasks the worker has).
    public let remoteText: String

    public var description: String {
        "UnknownTaskError on \(gatewayID): the worker has no task '\(taskName)' (\(remoteText))"
    }

    /// The typed error for a typed task channel that ended with `error`, if the worker refused the
    /// task by name (the worker runtime's text starts with "unknown task").
    static func from(_ error: any Error, taskName: String, gatewayID: String) -> (any Error)? {
        guard let remote = error as? RemoteError, remote.text.hasPrefix("unknown task") else { return nil }
        return UnknownTaskError(taskName: taskName, gatewayID: gatewayID, remoteText: remote.text)
    }
}

/// A malformed message on a typed task's channel (from a broken or hostile peer).
struct TypedTaskProtocolError: Error, CustomStringConvertible {
    let description: String
}

/// The messages of the typed-task protocol.
enum TypedTaskMessage {
    case call(id: Int64, input: Value)
    case calls(id: Int64, inputs: [Value])
    case cancel(id: Int64)
    case ok(id: Int64, output: Value)
    case err(id: Int64, typeName: String, message: String)
    case results(id: Int64, results: [Value])
    case stream(id: Int64, input: Value)
    case item(id: Int64, output: Value)
    case end(id: Int64)

    var value: Value {
        switch self {
        case .call(let id, let input): .tuple(["call", .int(id), input])
        case .calls(let id, let inputs): .tuple(["calls", .int(id), .list(inputs)])
        case .cancel(let id): .tuple(["cancel", .int(id)])
        case .ok(let id, let output): .tuple(["ok", .int(id), output])
        case .err(let id, let typeName, let message): .tuple(["err", .int(id), .string(typeName), .string(message)])
        case .results(let id, let results): .tuple(["results", .int(id), .list(results)])
        case .stream(let id, let input): .tuple(["stream", .int(id), input])
        case .item(let id, let output): .tuple(["item", .int(id), output])
        case .end(let id): .tuple(["end", .int(id)])
        }
    }

    /// One input's result inside a chunk's `results` list.
    static func chunkResult(_ result: Result<Value, RemoteTaskError>) -> Value {
        switch result {
        case .success(let output): .tuple(["ok", output])
        case .failure(let error): .tuple(["err", .string(error.typeName), .string(error.message)])
        }
    }

    /// Parses a message; anything else is a protocol error (never a crash).
    init(_ value: Value) throws {
        let parts: [Value]
        switch value {
        case .tuple(let items), .list(let items): parts = items
        default: throw TypedTaskProtocolError(description: "typed-task message is not a tuple: \(value)")
        }
        guard parts.count >= 2, case .string(let kind) = parts[0], case .int(let id) = parts[1] else {
            throw TypedTaskProtocolError(description: "typed-task message has no kind and id: \(value)")
        }
        switch (kind, parts.count) {
        case ("call", 3): self = .call(id: id, input: parts[2])
        case ("cancel", 2): self = .cancel(id: id)
        case ("calls", 3):
            guard case .list(let inputs) = parts[2] else {
                throw TypedTaskProtocolError(description: "typed-task chunk has no list of inputs: \(value)")
            }
            self = .calls(id: id, inputs: inputs)
        case ("ok", 3): self = .ok(id: id, output: parts[2])
        case ("results", 3):
            guard case .list(let results) = parts[2] else {
                throw TypedTaskProtocolError(description: "typed-task chunk reply has no list of results: \(value)")
            }
            self = .results(id: id, results: results)
        case ("stream", 3): self = .stream(id: id, input: parts[2])
        case ("item", 3): self = .item(id: id, output: parts[2])
        case ("end", 2): self = .end(id: id)
        case ("err", 4):
            guard case .string(let typeName) = parts[2], case .string(let message) = parts[3] else {
                throw TypedTaskProtocolError(description: "typed-task error reply is malformed: \(value)")
            }
            self = .err(id: id, typeName: typeName, message: message)
        default:
            throw TypedTaskProtocolError(description: "unknown typed-task message: \(value)")
        }
    }
}

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
                // Bound the calls running at once: stop reading until one ends.
                await running.waitForRoom(TaskRegistry.typedCallsPerChannel)
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
