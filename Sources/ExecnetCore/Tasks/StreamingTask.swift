// Streaming typed tasks: a task type whose call yields a stream of typed outputs. Each call gets a
// channel of its own, so closing the channel (or the caller's cancellation, which closes it) ends
// the call: the worker cancels the call's Swift Task.
//
// Wire format on the call's channel (plain execnet values):
//   client -> worker  ("stream", id, input)      start the call (the first and only message)
//   worker -> client  ("item", id, output)       one output, in order
//                     ("end", id)                the call returned: no more outputs
//                     ("err", id, type, text)    the call threw (after the outputs sent before)
// The worker's side is ExecnetWorkerRuntime's StreamingTask+Registry.swift; the client's is
// ExecnetClient's Tasks/Gateway+Stream.swift.

import ExecnetValue

/// A task with a name and a typed input whose call yields a stream of typed outputs, called with
/// ``Gateway/stream(_:_:)``.
///
/// Declare the type in code both the client and the worker compile; register it in the worker by
/// type with a body that writes outputs (``TaskRegistry/register(_:_:)-(T.Type,(T.Input,TypedStreamWriter<T.Output>,TypedTaskContext)->Void)``)
/// or returns an `AsyncSequence` of them.
///
/// ```swift
/// enum Countdown: StreamingTypedTask {
///     typealias Input = Int
///     typealias Output = Int
///     static let name = "countdown"
/// }
/// ```
public protocol StreamingTypedTask: SendableMetatype {
    /// What a call takes.
    associatedtype Input: Codable & Sendable
    /// What a call yields, any number of times.
    associatedtype Output: Codable & Sendable
    /// The name the task is registered under in the worker (defaults to the type's name).
    static var name: String { get }
}

extension StreamingTypedTask {
    /// The type's name, as written in the source (`String(describing:)`).
    public static var name: String { String(describing: Self.self) }
}

/// Sends a streaming task's outputs to its caller, in order.
public struct TypedStreamWriter<Output: Codable & Sendable>: Sendable {
    let channel: Channel
    let requestID: Int64

    package init(channel: Channel, requestID: Int64) {
        self.channel = channel
        self.requestID = requestID
    }

    /// Sends one output to the caller.
    ///
    /// Suspends while the channel's flow-control window is full (a slow consumer holds the task back).
    ///
    /// - Parameter output: The output.
    /// - Throws: `EncodingError` if the output does not convert; ``ExecnetError`` if the channel is
    ///   closed (the caller went away); `CancellationError` if the call was cancelled.
    public func send(_ output: Output) async throws {
        try Task.checkCancellation()
        try await channel.send(TypedTaskMessage.item(id: requestID, output: try ValueEncoder().encode(output)).value)
    }
}
