// A result slot that a blocked thread waits on: the blocking twin of a continuation, used by the
// noasync channel API (tasks on threads of their own).

import Synchronization

/// A one-shot result that one thread waits for and another fulfils.
final class BlockingOutcome<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    private let signal = ThreadSignal()

    /// Stores the result and wakes the waiter. Only the first call counts.
    func fulfil(_ value: Result<T, any Error>) {
        let stored = result.withLock { slot -> Bool in
            if slot != nil { return false }
            slot = value
            return true
        }
        if stored { signal.raise() }
    }

    /// Waits for the result until `deadline`.
    ///
    /// - Returns: The result, or `nil` on timeout.
    @available(*, noasync, message: "blocks the calling thread")
    func wait(deadline: ContinuousClock.Instant?) -> Result<T, any Error>? {
        guard signal.wait(deadline: deadline) else { return nil }
        return result.withLock { $0 }
    }

    /// The result if it is already there.
    var current: Result<T, any Error>? { result.withLock { $0 } }
}
