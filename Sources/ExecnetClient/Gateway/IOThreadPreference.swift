// Running client code on the execnet I/O thread: the public face of IOThreadExecutor on the
// client side (workers choose it per task, with TaskRegistry.registerOnIOThread).

/// Runs `operation` with this process's execnet I/O thread as its preferred task executor.
///
/// By default a channel's `send` hands the message to the I/O thread (one thread wake-up), and
/// an arriving item resumes its receiver on Swift's cooperative pool (another). Code inside
/// `operation` runs on the I/O thread itself: its sends go straight to the socket and arriving
/// items resume it in the same turn of the poll loop. For a tight send/receive loop this removes
/// two wake-ups per message each way (see docs/PERFORMANCE.md).
///
/// Structured child tasks (`async let`, task groups) inherit the preference; unstructured tasks
/// (`Task {}`, `Task.detached`) and actor-isolated code do not.
///
/// - Important: While `operation` runs, no socket of this process is served. Keep it to message
///   handling: never block, and move long computations elsewhere (a `Task` without the
///   preference, or a thread). The blocking channel API (`receiveBlocking`, `sendBlocking`)
///   throws ``ExecnetError`` `invalidState` on the I/O thread instead of deadlocking.
///
/// - Parameters:
///   - isolation: The caller's actor isolation, kept for `operation`.
///   - operation: The code to run.
/// - Returns: What `operation` returns.
/// - Throws: What `operation` throws; ``ExecnetError`` `transport` if the runtime cannot start.
public func withExecnetIOThread<T, Failure: Error>(
    isolation: isolated (any Actor)? = #isolation,
    _ operation: () async throws(Failure) -> T
) async throws -> T {
    let runtime = try await ClientRuntime.started()
    return try await withTaskExecutorPreference(runtime.io.executor, isolation: isolation, operation: operation)
}
