// gateway.stream: calls a streaming typed task on a channel of its own and yields its outputs as a
// typed AsyncSequence. Closing the channel ends the call in the worker; the stream closes it when
// the consumer cancels, calls `cancel()`, or drops the stream.

import ExecnetCore
import ExecnetValue
import Synchronization

extension Gateway {
    /// Calls the streaming typed task `T` in this gateway's worker; its outputs arrive as a typed
    /// `AsyncSequence`.
    ///
    /// The call runs on a channel of its own. Cancelling the consuming task, calling
    /// ``TypedStream/cancel()``, or dropping the stream closes the channel, which cancels the call's
    /// Swift `Task` in the worker. Outputs are flow-controlled: a slow consumer holds the worker back.
    ///
    /// - Parameters:
    ///   - task: The task type (registered in the worker with ``TaskRegistry/register(_:_:)-(T.Type,(T.Input,TypedStreamWriter<T.Output>,TypedTaskContext)->Void)``).
    ///   - input: The call's input.
    /// - Returns: The outputs. Iterating throws ``RemoteTaskError`` if the task threw (after the
    ///   outputs sent before), ``UnknownTaskError`` if the worker has no such task, ``ExecnetError``
    ///   (`.endOfChannel` with a ``PeerEnd``) if the worker died before the end, `DecodingError` if an
    ///   output does not convert, `CancellationError` if the consumer was cancelled.
    /// - Throws: `EncodingError` if the input does not convert; ``ExecnetError`` if the gateway is unusable.
    public func stream<T: StreamingTypedTask>(_ task: T.Type, _ input: T.Input) async throws -> TypedStream<T> {
        let encoded = try ValueEncoder().encode(input)
        let channel = try remoteExec(T.name, arguments: [])
        let call = StreamCall(channel: channel, gatewayID: id, taskName: T.name)
        do {
            try await channel.send(TypedTaskMessage.stream(id: 1, input: encoded).value)
        } catch {
            // A worker that refused the channel at once (an unknown task) closed it before the
            // send: report why it closed.
            if let closed = error as? ExecnetError, closed.code == .invalidState {
                do {
                    try await channel.waitClose(timeout: .seconds(10))
                } catch let end {
                    call.cancel()
                    throw UnknownTaskError.from(end, taskName: T.name, gatewayID: id) ?? end
                }
            }
            call.cancel()
            throw error
        }
        return TypedStream(call: call)
    }
}

/// The outputs of one streaming typed call (see ``Gateway/stream(_:_:)``).
///
/// Iterate it once. Dropping it (and its iterator) before the end cancels the call in the worker.
public struct TypedStream<T: StreamingTypedTask>: AsyncSequence, Sendable {
    /// One output of the task.
    public typealias Element = T.Output

    let call: StreamCall

    /// Ends the call: closes its channel, which cancels the worker's `Task`. Iteration then ends.
    public func cancel() { call.cancel() }

    /// Iterates the outputs.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let call: StreamCall
        var finished = false

        /// The next output, or `nil` after the task returned.
        public mutating func next() async throws -> T.Output? {
            if finished { return nil }
            let call = self.call
            do {
                let value = try await withTaskCancellationHandler {
                    try await call.channel.receive()
                } onCancel: {
                    call.cancel()
                }
                switch try TypedTaskMessage(value) {
                case .item(_, let output):
                    return try ValueDecoder().decode(T.Output.self, from: output)
                case .end:
                    finished = true
                    call.cancel()
                    return nil
                case .err(_, let typeName, let message):
                    finished = true
                    call.cancel()
                    throw RemoteTaskError(taskName: T.name, gatewayID: call.gatewayID, typeName: typeName, message: message)
                default:
                    throw TypedTaskProtocolError(description: "unexpected message on a streaming task's channel: \(value)")
                }
            } catch let error as ExecnetError where error.code == .endOfChannel && call.isCancelled {
                // We closed the channel (cancel()): the stream just ends.
                finished = true
                if Task.isCancelled { throw CancellationError() }
                return nil
            } catch {
                finished = true
                call.cancel()
                if Task.isCancelled, !(error is RemoteTaskError) { throw CancellationError() }
                throw UnknownTaskError.from(error, taskName: T.name, gatewayID: call.gatewayID) ?? error
            }
        }
    }

    /// An iterator over the outputs.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call) }
}

/// The channel of one streaming call; closed when cancelled or when the last reference goes.
final class StreamCall: Sendable {
    let channel: Channel
    let gatewayID: String
    let taskName: String
    private let cancelled = Atomic<Bool>(false)

    init(channel: Channel, gatewayID: String, taskName: String) {
        self.channel = channel
        self.gatewayID = gatewayID
        self.taskName = taskName
    }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    func cancel() {
        cancelled.store(true, ordering: .releasing)
        try? channel.close()
    }

    deinit { try? channel.close() }
}
