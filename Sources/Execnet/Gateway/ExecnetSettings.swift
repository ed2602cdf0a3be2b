// Process-wide settings of the client runtime: the logger and where worker output goes. They may be
// set at any time; the hub reads them for every line and every new gateway.

import Logging
import Synchronization

/// Where a worker's stdout and stderr lines go: the gateway id, the stream, and the line's bytes
/// (without the newline).
public typealias WorkerOutputHandler = @Sendable (_ gatewayID: String, _ stream: WorkerOutputStream, _ line: [UInt8]) -> Void

/// Process-wide settings for gateways made in this process.
public enum ExecnetSettings {
    private struct Values {
        var logger: Logger?
        var outputHandler: WorkerOutputHandler?
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

    static var logger: Logger? { values.withLock { $0.logger } }

    static var outputHandler: WorkerOutputHandler { values.withLock { $0.outputHandler } ?? defaultOutputHandler }
}
