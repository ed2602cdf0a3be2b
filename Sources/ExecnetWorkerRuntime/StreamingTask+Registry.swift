// The worker's side of streaming typed tasks (ExecnetCore's Tasks/StreamingTask.swift has the
// protocol and the wire format): registering one by type and serving a call on its channel.

import ExecnetCore
import ExecnetValue

extension TaskRegistry {
    /// Registers a streaming typed task under `T.name`, with a body that writes its outputs.
    ///
    /// Each call runs as a Swift `Task` of its own on a channel of its own. The client closing the
    /// channel (or cancelling its consumer) cancels that `Task`. When the body returns, the caller's
    /// stream ends; when it throws, the caller's stream throws ``RemoteTaskError``.
    ///
    /// - Parameters:
    ///   - type: The task type.
    ///   - body: The task: takes the decoded input and a writer for the outputs.
    public mutating func register<T: StreamingTypedTask>(
        _ type: T.Type,
        _ body: @escaping @Sendable (T.Input, TypedStreamWriter<T.Output>, TypedTaskContext) async throws -> Void
    ) {
        register(T.name) { context in
            try await serveTypedStream(T.self, context: context, body)
        }
    }

    /// Registers a streaming typed task under `T.name`, with a body that returns its outputs as an
    /// `AsyncSequence`.
    ///
    /// The worker iterates the sequence and sends each element; cancellation (the client closing
    /// the channel) cancels the iterating `Task`. See ``register(_:_:)-(T.Type,(T.Input,TypedStreamWriter<T.Output>,TypedTaskContext)->Void)``.
    ///
    /// - Parameters:
    ///   - type: The task type.
    ///   - body: The task: takes the decoded input, returns the outputs.
    public mutating func register<T: StreamingTypedTask, Outputs: AsyncSequence & SendableMetatype>(
        _ type: T.Type, _ body: @escaping @Sendable (T.Input, TypedTaskContext) async throws -> Outputs
    ) where Outputs.Element == T.Output, Outputs.AsyncIterator: SendableMetatype {
        register(T.self) { (input: T.Input, writer: TypedStreamWriter<T.Output>, context: TypedTaskContext) in
            for try await output in try await body(input, context) {
                try await writer.send(output)
            }
        }
    }
}

/// The worker's side of one streaming call: reads the `stream` message, runs the body, and cancels
/// it when the client closes the channel (or sends anything else).
private func serveTypedStream<T: StreamingTypedTask>(
    _ type: T.Type, context: TaskContext,
    _ body: @escaping @Sendable (T.Input, TypedStreamWriter<T.Output>, TypedTaskContext) async throws -> Void
) async throws {
    let channel = context.channel
    var incoming = channel.makeAsyncIterator()
    guard let first = try await incoming.next() else { return }
    guard case .stream(let id, let input)? = try? TypedTaskMessage(first) else {
        let id: Int64 = if case .tuple(let parts) = first, parts.count >= 2, case .int(let id) = parts[1] { id } else { 0 }
        try await channel.send(TypedTaskMessage.err(
            id: id, typeName: "TypedTaskProtocolError", message: "a streaming task's first message must be (\"stream\", id, input): \(first)").value)
        return
    }
    await withTaskGroup(of: Void.self) { group in
        group.addTask {
            let reply: TypedTaskMessage
            do {
                let decoded = try ValueDecoder().decode(T.Input.self, from: input)
                try await body(decoded, TypedStreamWriter(channel: channel, requestID: id),
                               TypedTaskContext(gatewayID: context.gatewayID, requestID: id))
                reply = .end(id: id)
            } catch {
                if Task.isCancelled { return }
                reply = .err(id: id, typeName: String(reflecting: Swift.type(of: error)), message: "\(error)")
            }
            try? await channel.send(reply.value)
        }
        group.addTask {
            // Anything more from the client (a cancel) or the channel's end stops the call.
            var rest = channel.makeAsyncIterator()
            _ = try? await rest.next()
        }
        _ = await group.next()
        group.cancelAll()
    }
}
