// MultiChannel: many channels used as one. Fan out with sendEach, fan in with receiveEach or one
// receive queue that gets every channel's items and an endmarker for each channel that ends.

import ExecnetCore
import ExecnetValue
import Synchronization

/// A fixed collection of channels used together (execnet's `MultiChannel`).
public final class MultiChannel: Sendable {
    /// The channels, in order.
    public let channels: [Channel]
    private let queue = Mutex<ReceiveQueue?>(nil)

    /// Makes a multichannel from channels.
    ///
    /// - Parameter channels: The channels, in the order indexing will use.
    public init(_ channels: [Channel]) {
        self.channels = channels
    }

    /// The number of channels.
    public var count: Int { channels.count }

    /// The channel at `index`.
    public subscript(index: Int) -> Channel { channels[index] }

    /// Whether `channel` is one of these (by identity).
    public func contains(_ channel: Channel) -> Bool { channels.contains { $0 === channel } }

    /// Sends `value` to every channel, in order.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: The first send's error; channels after it were not sent to.
    public func sendEach(_ value: Value) async throws {
        for channel in channels { try await channel.send(value) }
    }

    /// Sends any `Encodable` value to every channel, converted once with ``ValueEncoder``.
    ///
    /// - Parameter value: The value to send.
    /// - Throws: `EncodingError`; the first send's error (channels after it were not sent to).
    @_disfavoredOverload
    public func sendEach<T: Encodable>(_ value: T) async throws {
        try await sendEach(try ValueEncoder().encode(value))
    }

    /// Receives one item from every channel, in channel order.
    ///
    /// - Parameter timeout: How long to wait for each channel; `nil` waits indefinitely.
    /// - Returns: One item per channel.
    /// - Throws: ``ExecnetError`` `invalidState` once a receive queue exists; any receive error.
    public func receiveEach(timeout: Duration? = nil) async throws -> [Value] {
        try await receiveEachWithChannel(timeout: timeout).map(\.1)
    }

    /// Receives one item from every channel, paired with its channel.
    ///
    /// - Parameter timeout: How long to wait for each channel; `nil` waits indefinitely.
    /// - Returns: `(channel, item)` pairs in channel order.
    /// - Throws: As ``receiveEach(timeout:)``.
    public func receiveEachWithChannel(timeout: Duration? = nil) async throws -> [(Channel, Value)] {
        if queue.withLock({ $0 }) != nil {
            throw ExecnetError(.invalidState, "receiveEach is not allowed once a receive queue exists")
        }
        var result: [(Channel, Value)] = []
        for channel in channels { result.append((channel, try await channel.receive(timeout: timeout))) }
        return result
    }

    /// The receive queue of these channels, without endmarkers. A second call returns the same queue.
    ///
    /// - Returns: The queue.
    /// - Throws: ``ExecnetError`` `invalidState` if a channel already has another callback.
    public func makeReceiveQueue() throws -> ReceiveQueue {
        try makeQueue(endmarker: nil)
    }

    /// The receive queue of these channels; each channel that ends puts `(channel, endmarker)`.
    ///
    /// A second call returns the same queue (with the first call's endmarker).
    ///
    /// - Parameter endmarker: The value put for each channel that ends.
    /// - Returns: The queue.
    /// - Throws: ``ExecnetError`` `invalidState` if a channel already has another callback.
    public func makeReceiveQueue(endmarker: Value) throws -> ReceiveQueue {
        try makeQueue(endmarker: endmarker)
    }

    private func makeQueue(endmarker: Value?) throws -> ReceiveQueue {
        try queue.withLock { existing in
            if let existing { return existing }
            let created = ReceiveQueue()
            for channel in channels { try created.subscribe(channel, endmarker: endmarker) }
            existing = created
            return created
        }
    }

    /// Waits until every channel is closed, then rethrows the first ``RemoteError`` any of them had.
    ///
    /// A channel closed with a remote error does not stop the wait (execnet's `waitclose`); any
    /// other end stops it at once, and later channels are not waited for.
    ///
    /// - Parameter timeout: How long to wait for each channel; `nil` waits indefinitely.
    /// - Throws: The first ``RemoteError`` (an error raised by a task), after every channel closed;
    ///   ``ExecnetError`` `endOfChannel` whose ``ExecnetError/peerEnd`` gives the cause when a
    ///   channel's peer went away (its worker died or exited, the gateway was terminated, the
    ///   broker lost it); `timeout` if a channel did not close in time; `CancellationError`.
    public func waitClose(timeout: Duration? = nil) async throws {
        var firstError: (any Error)?
        for channel in channels {
            do {
                try await channel.waitClose(timeout: timeout)
            } catch let error as RemoteError {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }
}

extension MultiChannel: RandomAccessCollection {
    public var startIndex: Int { 0 }
    public var endIndex: Int { channels.count }
}
