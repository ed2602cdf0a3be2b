// A receive queue: one queue fed by many channels (it subscribes to each channel's items through
// a direct callback, run by the thread that delivers the item, so an item costs no hand-off to
// the callback thread), with an endmarker per channel that ends. `get` waits with timeout and
// cancellation.

import DequeModule
import ExecnetCore
import ExecnetValue
import Synchronization

/// A queue of `(channel, item)` pairs from many channels, made by
/// ``MultiChannel/makeReceiveQueue(endmarker:)``.
///
/// If the queue was made with an endmarker, every channel that ends (closed by its peer, by this
/// side, or because its worker died or was killed) puts exactly one `(channel, endmarker)`.
/// Async iteration ends once every subscribed channel has ended and the queue is empty.
public final class ReceiveQueue: Sendable {
    private struct State {
        var items: Deque<(Channel, Value)> = []
        var waiters: Deque<(id: Int, continuation: CheckedContinuation<(Channel, Value)?, any Error>)> = []
        var openChannels = 0
        /// The timers of the first subscribed channel's I/O thread, for `get(timeout:)`.
        var timers: TimerQueue?
    }
    private let state = Mutex(State())
    private let waiterIDs = Atomic<Int>(0)

    init() {}

    deinit {
        // Items never taken leave the process-wide count with the queue.
        let left = state.withLock { $0.items.count }
        if left > 0 { SharedCounters.receiveQueued.wrappingSubtract(left, ordering: .relaxed) }
    }

    /// Subscribes to a channel's items (and its end).
    func subscribe(_ channel: Channel, endmarker: Value?) throws {
        state.withLock { state in
            state.openChannels += 1
            if state.timers == nil { state.timers = channel.connection.transport.timers }
        }
        // Held strongly until the channel's end, when the channel drops its registration; a weak
        // capture would give the queue a side table and slow every retain of it.
        try channel.register(CallbackRegistration(
            callback: { [self] value in put(channel, value) },
            endmarker: endmarker,
            onEnd: { [self] in channelEnded() },
            direct: true))
    }

    private func put(_ channel: Channel, _ value: Value) {
        let waiter = state.withLock { state -> CheckedContinuation<(Channel, Value)?, any Error>? in
            if let waiter = state.waiters.popFirst() { return waiter.continuation }
            state.items.append((channel, value))
            SharedCounters.receiveQueued.wrappingAdd(1, ordering: .relaxed)
            return nil
        }
        waiter?.resume(returning: (channel, value))
    }

    private func channelEnded() {
        let finished = state.withLock { state -> [CheckedContinuation<(Channel, Value)?, any Error>] in
            state.openChannels -= 1
            guard state.openChannels == 0, state.items.isEmpty else { return [] }
            let waiters = state.waiters.map(\.continuation)
            state.waiters.removeAll()
            return waiters
        }
        for waiter in finished { waiter.resume(returning: nil) }
    }

    /// The number of items waiting in the queue.
    public var count: Int { state.withLock { $0.items.count } }

    /// The number of callers waiting in ``get(timeout:)`` or iteration.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Takes the next `(channel, item)` pair.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Returns: The channel the item came from, and the item (or the endmarker).
    /// - Throws: ``ExecnetError`` `timeout`; `endOfChannel` once every channel has ended and the
    ///   queue is empty; `CancellationError` if cancelled (nothing is taken).
    nonisolated(nonsending) public func get(timeout: Duration? = nil) async throws -> (Channel, Value) {
        guard let pair = try await next(timeout: timeout) else {
            throw ExecnetError(.endOfChannel, "every channel of the receive queue has ended and the queue is empty")
        }
        return pair
    }

    /// The next pair, or `nil` once every channel ended and nothing is left.
    nonisolated(nonsending) func next(timeout: Duration?) async throws -> (Channel, Value)? {
        if let pair = state.withLock({ $0.items.popFirst() }) {
            SharedCounters.receiveQueued.wrappingSubtract(1, ordering: .relaxed)
            return pair
        }
        let waiterID = waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        let timers = deadline == nil ? nil : state.withLock { $0.timers }
        let timer = TimerQueue.startWait(deadline, on: timers) { [self] in
            removeWaiter(waiterID)?.resume(throwing: ExecnetError(.timeout, "no item in the receive queue within \(timeout!)"))
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Channel, Value)?, any Error>) in
                let immediate: Result<(Channel, Value)?, any Error>? = state.withLock { state in
                    if let pair = state.items.popFirst() {
                        SharedCounters.receiveQueued.wrappingSubtract(1, ordering: .relaxed)
                        return .success(pair)
                    }
                    if state.openChannels == 0 { return .success(nil) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if let deadline, ContinuousClock.now >= deadline {
                        return .failure(ExecnetError(.timeout, "no item in the receive queue within \(timeout!)"))
                    }
                    state.waiters.append((waiterID, continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            removeWaiter(waiterID)?.resume(throwing: CancellationError())
        }
    }

    private func removeWaiter(_ id: Int) -> CheckedContinuation<(Channel, Value)?, any Error>? {
        state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
    }
}

extension ReceiveQueue: AsyncSequence {
    public typealias Element = (Channel, Value)

    /// Iterates pairs until every channel has ended and the queue is empty.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: ReceiveQueue

        /// The next pair, or `nil` at the end.
        public mutating func next() async throws -> (Channel, Value)? {
            try await queue.next(timeout: nil)
        }
    }

    /// An iterator over the queue.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: self) }
}
