// A timer for async waits with a timeout: a task that sleeps until the deadline and then runs the
// expiry, unless the wait finished first and cancelled it. Shared by receive, waitClose, receive
// queues, gateway start-up and join.

/// Starts a timer that runs `onExpiry` at `deadline`, or does nothing for a `nil` deadline.
///
/// - Parameters:
///   - deadline: When to expire; `nil` means never.
///   - onExpiry: What to do at the deadline (typically: remove the waiter and resume it with a
///     timeout error). Not run if the returned task is cancelled first.
/// - Returns: The timer's task; cancel it when the wait ends.
func startDeadlineTimer(
    _ deadline: ContinuousClock.Instant?, _ onExpiry: @escaping @Sendable () -> Void
) -> Task<Void, Never>? {
    guard let deadline else { return nil }
    return Task {
        try? await Task.sleep(until: deadline, clock: .continuous)
        if Task.isCancelled { return }
        onExpiry()
    }
}
