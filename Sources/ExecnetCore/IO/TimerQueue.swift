// The timers of one I/O thread: a min-heap of deadlines behind a lock. The role's own timers
// (IOLoop.schedule, on the I/O thread) and timed waits from any thread (receive, get, waitClose,
// join, start-up) share it; the I/O thread polls until the earliest deadline and runs what is due.
// A cancelled timer leaves the heap at once, so its closure (and what it holds) is freed then,
// not at its deadline. Timed waits with no running I/O thread use a process-wide fallback thread
// that runs only timers, with the same queue.

import Synchronization

/// One scheduled timer: its deadline, what to run, and its place in its queue's heap.
///
/// - Important: `index`, `sequence` and `action` are read and written under the owning queue's
///   lock only; an I/O-thread action (`.loop`) is made and run on that thread only. That is why the
///   unchecked `Sendable` is sound.
package final class TimerEntry: @unchecked Sendable {
    package enum Action {
        /// A role's timer: runs on its I/O thread; dropped if the thread stops first.
        case loop(() -> Void)
        /// A timed wait's expiry: may run on any I/O thread (the fallback's, if its own stopped).
        case wait(@Sendable () -> Void)
    }

    package let deadline: ContinuousClock.Instant
    fileprivate var sequence: UInt64 = 0
    /// The entry's position in the heap; -1 once it fired, was cancelled or was moved away.
    fileprivate var index = -1
    fileprivate var action: Action?

    fileprivate init(deadline: ContinuousClock.Instant, action: Action) {
        self.deadline = deadline
        self.action = action
    }

    fileprivate func precedes(_ other: TimerEntry) -> Bool {
        deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
    }
}

/// A timer that can be cancelled from any thread.
package struct TimerHandle: Sendable {
    fileprivate let queue: TimerQueue
    fileprivate let entry: TimerEntry

    /// Removes the timer from its queue at once (its action and captures are released now); does
    /// nothing if it already fired.
    package func cancel() { queue.cancel(entry) }
}

/// The timers of one I/O thread. See the file comment.
package final class TimerQueue: Sendable {
    private struct State {
        var heap: [TimerEntry] = []
        var nextSequence: UInt64 = 0
        /// The latest instant by which the I/O thread will look at the heap again; `nil` while it
        /// may sleep without a deadline. A timer due before it must wake the thread.
        var plannedWake: ContinuousClock.Instant?
        /// Set once the I/O thread has stopped; new timers then go to the fallback thread.
        var closed = false
    }

    private let state = Mutex(State())
    /// Wakes the owning I/O thread's poll.
    private let wake: @Sendable () -> Void
    /// The owning I/O thread's token (see ``IOThreadExecutor``): its own timers need no wake-up.
    private let ownerToken: UInt

    package init(ownerToken: UInt, wake: @escaping @Sendable () -> Void) {
        self.ownerToken = ownerToken
        self.wake = wake
    }

    /// The number of timers waiting to fire (for tests and diagnostics).
    package var count: Int { state.withLock { $0.heap.count } }

    // MARK: - Any thread

    /// Schedules a timed wait's expiry.
    ///
    /// - Returns: The handle, or `nil` if the I/O thread has stopped (nothing was scheduled).
    package func schedule(at deadline: ContinuousClock.Instant, wait action: @escaping @Sendable () -> Void) -> TimerHandle? {
        let entry = TimerEntry(deadline: deadline, action: .wait(action))
        return insert(entry) ? TimerHandle(queue: self, entry: entry) : nil
    }

    /// Removes `entry` if it is still waiting.
    package func cancel(_ entry: TimerEntry) {
        let action = state.withLock { state -> TimerEntry.Action? in
            guard entry.index >= 0 else { return nil }
            Self.remove(at: entry.index, from: &state.heap)
            return entry.action.take()
        }
        // Released outside the lock: the captures' deinits may run arbitrary code.
        _ = consume action
    }

    private func insert(_ entry: TimerEntry) -> Bool {
        let mustWake = state.withLock { state -> Bool? in
            if state.closed { return nil }
            entry.sequence = state.nextSequence
            state.nextSequence &+= 1
            Self.push(entry, onto: &state.heap)
            if let planned = state.plannedWake, planned <= entry.deadline { return false }
            state.plannedWake = entry.deadline
            return true
        }
        guard let mustWake else { return false }
        if mustWake && cexecnetThreadToken() != ownerToken { wake() }
        return true
    }

    // MARK: - The I/O thread

    /// Schedules a role's timer (I/O thread only).
    package func schedule(at deadline: ContinuousClock.Instant, loop action: @escaping () -> Void) -> TimerHandle {
        let entry = TimerEntry(deadline: deadline, action: .loop(action))
        // The owning thread runs until it has handled its own timers' closing.
        _ = insert(entry)
        return TimerHandle(queue: self, entry: entry)
    }

    /// The instant by which the I/O thread must look again, recorded as its planned wake-up. With
    /// no timer, a wake-up planned earlier is kept while it lies ahead: a wait that starts and ends
    /// between two turns then costs no wake-up.
    package func nextWake(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        state.withLock { state in
            if let first = state.heap.first {
                state.plannedWake = first.deadline
            } else if let planned = state.plannedWake, planned <= now {
                state.plannedWake = nil
            }
            return state.plannedWake
        }
    }

    /// Runs every timer that is due, in deadline order, outside the lock.
    package func runDue() {
        let due = state.withLock { state -> [TimerEntry.Action] in
            guard !state.heap.isEmpty else { return [] }
            let now = ContinuousClock.now
            var due: [TimerEntry.Action] = []
            while let first = state.heap.first, first.deadline <= now {
                Self.remove(at: 0, from: &state.heap)
                if let action = first.action.take() { due.append(action) }
            }
            return due
        }
        for action in due {
            switch action {
            case .loop(let body): body()
            case .wait(let body): body()
            }
        }
    }

    /// Refuses new timers and takes the waiting ones: the I/O thread has stopped. Timed waits go
    /// on on the fallback thread (with their deadlines); the role's timers are dropped.
    package func close() {
        let waits = state.withLock { state -> [(ContinuousClock.Instant, @Sendable () -> Void)] in
            state.closed = true
            var waits: [(ContinuousClock.Instant, @Sendable () -> Void)] = []
            for entry in state.heap {
                entry.index = -1
                if case .wait(let body)? = entry.action.take() { waits.append((entry.deadline, body)) }
            }
            state.heap = []
            return waits
        }
        // A handle of a moved wait cancels nothing; its expiry then finds no waiter and does nothing.
        for (deadline, body) in waits { _ = TimerQueue.fallback.schedule(at: deadline, wait: body) }
    }

    // MARK: - The fallback

    /// The timers of a process-wide thread that runs nothing else, for timed waits whose own I/O
    /// thread has stopped (or that have none). Started on first use; it never stops.
    package static var fallback: TimerQueue { fallbackThread.timers }

    private static let fallbackThread: IOThread<TimerOnlyRole> = {
        do {
            return try IOThread(name: "execnet-timer") { TimerOnlyRole() }
        } catch {
            fatalError("the execnet timer thread could not start: \(error)")
        }
    }()

    /// Schedules a timed wait's expiry on `preferred` (the I/O thread of the waiter's connection),
    /// or on the fallback thread if it has stopped or is `nil`.
    ///
    /// - Parameters:
    ///   - deadline: When the wait expires; `nil` schedules nothing.
    ///   - preferred: The queue to use while its thread runs.
    ///   - onExpiry: Run at the deadline on an I/O thread, unless cancelled first.
    /// - Returns: The handle to cancel when the wait ends, or `nil` for a `nil` deadline.
    package static func startWait(
        _ deadline: ContinuousClock.Instant?, on preferred: TimerQueue?, _ onExpiry: @escaping @Sendable () -> Void
    ) -> TimerHandle? {
        guard let deadline else { return nil }
        if let preferred, let handle = preferred.schedule(at: deadline, wait: onExpiry) { return handle }
        return fallback.schedule(at: deadline, wait: onExpiry)
    }

    // MARK: - Heap

    private static func push(_ entry: TimerEntry, onto heap: inout [TimerEntry]) {
        entry.index = heap.count
        heap.append(entry)
        siftUp(entry.index, &heap)
    }

    private static func remove(at index: Int, from heap: inout [TimerEntry]) {
        let removed = heap[index]
        removed.index = -1
        let last = heap.removeLast()
        guard index < heap.count else { return }
        heap[index] = last
        last.index = index
        siftUp(index, &heap)
        siftDown(last.index, &heap)
    }

    private static func siftUp(_ start: Int, _ heap: inout [TimerEntry]) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            swapAt(child, parent, &heap)
            child = parent
        }
    }

    private static func siftDown(_ start: Int, _ heap: inout [TimerEntry]) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let child = right < heap.count && heap[right].precedes(heap[left]) ? right : left
            guard heap[child].precedes(heap[parent]) else { return }
            swapAt(child, parent, &heap)
            parent = child
        }
    }

    private static func swapAt(_ first: Int, _ second: Int, _ heap: inout [TimerEntry]) {
        heap.swapAt(first, second)
        heap[first].index = first
        heap[second].index = second
    }
}

/// The role of the fallback timer thread: no sockets, no commands; its loop only runs timers.
final class TimerOnlyRole: IOThreadRole {
    typealias Command = Never
    func setUp(_ loop: IOLoop) throws {}
    func handle(_ command: Never, _ loop: IOLoop) {}
    func afterWakeUp(_ loop: IOLoop) {}
    func tearDown(_ loop: IOLoop) {}
}
