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
            let work: (id: Int64, inputs: [Value], chunked: Bool)
            switch message {
            case .call(let id, let input): work = (id, [input], false)
            case .calls(let id, let inputs): work = (id, inputs, true)
            case .cancel(let id):
                running.calls.withLock { $0[id] }?.cancel()
                continue
            case .ok, .err, .results, .stream, .item, .end:
                continue
            }
            do {
                let id = work.id
                // Bound the calls running at once: wait for the oldest before starting more.
                let oldest: Task<Void, Never>? = running.calls.withLock { tasks in
                    tasks.count >= TaskRegistry.typedCallsPerChannel ? tasks.min { $0.key < $1.key }?.value : nil
                }
                if let oldest { await oldest.value }
                let started = running.calls.withLock { tasks -> Bool in
                    if tasks[id] != nil { return false }
                    // Created under the lock, so the call's own removal cannot run before this insertion.
                    tasks[id] = Task {
                        let typedContext = TypedTaskContext(gatewayID: context.gatewayID, requestID: id)
                        var results: [Result<Value, RemoteTaskError>] = []
                        // A chunk's inputs run one after another; cancellation ends the chunk early
                        // (the client no longer waits for its reply).
                        for input in work.inputs where !Task.isCancelled || results.isEmpty {
                            do {
                                let decoded = try ValueDecoder().decode(T.Input.self, from: input)
                                let output = try await body(decoded, typedContext)
                                results.append(.success(try ValueEncoder().encode(output)))
                            } catch {
                                results.append(.failure(RemoteTaskError(
                                    taskName: T.name, gatewayID: context.gatewayID,
                                    typeName: String(reflecting: Swift.type(of: error)), message: "\(error)")))
                            }
                        }
                        let reply: TypedTaskMessage = if work.chunked {
                            .results(id: id, results: results.map(TypedTaskMessage.chunkResult))
                        } else {
                            switch results[0] {
                            case .success(let output): .ok(id: id, output: output)
                            case .failure(let error): .err(id: id, typeName: error.typeName, message: error.message)
                            }
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
