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
// A streaming task (StreamingTypedTask, StreamingTask.swift) gets a channel per call:
//   client -> worker  ("stream", id, input)
//   worker -> client  ("item", id, output) ..., then ("end", id) or ("err", id, type, text)

import ExecnetValue
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

    package init(gatewayID: String, requestID: Int64) {
        self.gatewayID = gatewayID
        self.requestID = requestID
    }
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
    package static func from(_ error: any Error, taskName: String, gatewayID: String) -> (any Error)? {
        guard let remote = error as? RemoteError, remote.text.hasPrefix("unknown task") else { return nil }
        return UnknownTaskError(taskName: taskName, gatewayID: gatewayID, remoteText: remote.text)
    }
}

/// A malformed message on a typed task's channel (from a broken or hostile peer).
package struct TypedTaskProtocolError: Error, CustomStringConvertible {
    package let description: String

    package init(description: String) {
        self.description = description
    }
}

/// The messages of the typed-task protocol.
package enum TypedTaskMessage {
    case call(id: Int64, input: Value)
    case calls(id: Int64, inputs: [Value])
    case cancel(id: Int64)
    case ok(id: Int64, output: Value)
    case err(id: Int64, typeName: String, message: String)
    case results(id: Int64, results: [Value])
    case stream(id: Int64, input: Value)
    case item(id: Int64, output: Value)
    case end(id: Int64)

    package var value: Value {
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
    package static func chunkResult(_ result: Result<Value, RemoteTaskError>) -> Value {
        switch result {
        case .success(let output): .tuple(["ok", output])
        case .failure(let error): .tuple(["err", .string(error.typeName), .string(error.message)])
        }
    }

    /// Parses a message; anything else is a protocol error (never a crash).
    package init(_ value: Value) throws {
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
