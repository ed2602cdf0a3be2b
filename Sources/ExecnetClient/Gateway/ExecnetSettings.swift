// Process-wide settings of the client runtime: the logger and where worker output goes. They may be
// set at any time; the hub reads them for every line and every new gateway.

import ExecnetCore
import Logging
import Synchronization

/// Process-wide settings for gateways made in this process.
public enum ExecnetSettings {
    private struct Values {
        var logger: Logger?
        var outputHandler: WorkerOutputHandler?
        var localLiveness: LivenessSettings? = .default
    }
    private static let values = Mutex(Values())

    /// Sets the logger the runtime logs through (default: label `execnet.client`, level `info`, or
    /// `debug` when `EXECNET_DEBUG=1`). Call it before the first gateway or group is made: the
    /// runtime takes its logger when it starts.
    ///
    /// - Parameter logger: The logger to use.
    public static func setLogger(_ logger: Logger) {
        values.withLock { $0.logger = logger }
    }

    /// Sets where worker output lines go (default: this process's stderr, prefixed `[gw0] `).
    ///
    /// - Parameter handler: Called on the I/O thread for each line; it must return quickly.
    ///   `nil` restores the default.
    public static func setWorkerOutputHandler(_ handler: WorkerOutputHandler?) {
        values.withLock { $0.outputHandler = handler }
    }

    /// Sets how long a local (popen) worker may stay stopped before it is killed as unresponsive.
    ///
    /// The hub reads each local worker's process state (`/proc/<pid>/stat`) every half interval; a
    /// worker stopped (SIGSTOP, Ctrl-Z, a tracer) for `interval × liveness` is killed, and its
    /// channels end with a cause that says "unresponsive". A worker that is only busy (even with its
    /// I/O thread held by a long task) is never declared dead. If this process itself was not
    /// scheduled for a whole window (it was stopped), counting starts afresh.
    ///
    /// - Parameter settings: The window (default 1 s × 3); `nil` turns the check off. Applies to
    ///   workers started after the call (and to the next checks of running ones).
    public static func setLocalLiveness(_ settings: LivenessSettings?) {
        values.withLock { $0.localLiveness = settings }
    }

    static var localLiveness: LivenessSettings? { values.withLock { $0.localLiveness } }

    static var logger: Logger? { values.withLock { $0.logger } }

    static var outputHandler: WorkerOutputHandler { values.withLock { $0.outputHandler } ?? defaultOutputHandler }
}
