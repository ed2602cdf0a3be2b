// The client side's process-wide runtime: one I/O thread running the embedded hub, its private ipc
// directory, and clean-up at exit. Started on first use; stale directories of killed clients are
// removed when the next one starts.

import Logging
import Synchronization
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// The embedded hub and its I/O thread, one per client process.
final class ClientRuntime: Sendable {
    let io: IOThread<Hub>
    let endpoint: String
    let directory: String
    let logger: Logger
    let context: ZMQContext
    private let routingCounter = Atomic<Int>(0)
    /// A random token that makes this process's worker addresses unique at a shared broker.
    private let addressToken = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    /// Every gateway made in this process that may still have a live worker.
    let gateways = Mutex<[ObjectIdentifier: Gateway]>([:])

    private static let shared = Mutex<ClientRuntime?>(nil)

    /// The process's runtime, started on first use.
    ///
    /// - Throws: ``ExecnetError`` `transport` if the hub cannot start.
    static func current() throws -> ClientRuntime {
        try shared.withLock { shared in
            if let runtime = shared { return runtime }
            let runtime = try ClientRuntime()
            shared = runtime
            atexit { ClientRuntime.shutdownAtExit() }
            return runtime
        }
    }

    /// The process's runtime, started on first use on a short-lived thread of its own (starting
    /// waits for the I/O thread to bind, which must not block the cooperative pool).
    ///
    /// - Throws: ``ExecnetError`` `transport` if the hub cannot start.
    static func started() async throws -> ClientRuntime {
        if let runtime = shared.withLock({ $0 }) { return runtime }
        return try await withCheckedThrowingContinuation { continuation in
            OSThread(name: "execnet-start") {
                continuation.resume(with: Result { try current() })
            }.detach()
        }
    }

    private init() throws {
        let logger = ExecnetSettings.logger ?? makeExecnetLogger(label: "execnet.client")
        self.logger = logger
        let base = "/tmp/execnet-\(getuid())"
        mkdir(base, 0o700)
        removeStaleDirectories(in: base, logger: logger)
        var template = Array("\(base)/\(getpid())-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw WorkerProcess.systemError("mkdtemp")
        }
        let directory = cString(template)
        self.directory = directory
        let endpoint = "ipc://\(directory)/hub"
        self.endpoint = endpoint
        let context = try ZMQContext()
        self.context = context
        do {
            io = try IOThread(name: "execnet-io") {
                Hub(endpoint: endpoint, context: context, logger: logger)
            }
        } catch {
            removeDirectory(directory)
            throw ExecnetError(.transport, "the embedded hub could not start: \(error)", cause: error)
        }
    }

    /// A worker address unique in this process, and at any broker it shares with other clients.
    func nextRoutingID(for gatewayID: String) -> [UInt8] {
        let number = routingCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return Array("w\(number).\(addressToken).\(gatewayID)".utf8)
    }

    func track(_ gateway: Gateway) {
        gateways.withLock { $0[ObjectIdentifier(gateway)] = gateway }
    }

    func untrack(_ gateway: Gateway) {
        gateways.withLock { $0[ObjectIdentifier(gateway)] = nil }
    }

    /// At process exit: ask every live worker to exit, kill what remains after a short grace, stop
    /// the hub and remove the ipc directory.
    private static func shutdownAtExit() {
        guard let runtime = shared.withLock({ $0 }) else { return }
        let live = runtime.gateways.withLock { Array($0.values) }.filter(\.isAlive)
        for gateway in live { gateway.exit() }
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(500))
        while ContinuousClock.now < deadline && live.contains(where: \.isAlive) {
            usleep(5_000)
        }
        for gateway in live where gateway.isAlive { gateway.kill(signal: SIGKILL) }
        let killDeadline = ContinuousClock.now.advanced(by: .milliseconds(500))
        while ContinuousClock.now < killDeadline && live.contains(where: \.isAlive) {
            usleep(2_000)
        }
        runtime.io.stop()
        removeDirectory(runtime.directory)
    }
}

/// Writes each worker output line to this process's stderr, prefixed with the gateway id.
@Sendable
func defaultOutputHandler(_ gatewayID: String, _ stream: WorkerOutputStream, _ line: [UInt8]) {
    var bytes = Array("[\(gatewayID)] ".utf8)
    bytes.append(contentsOf: line)
    bytes.append(UInt8(ascii: "\n"))
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = write(2, raw.baseAddress! + offset, raw.count - offset)
            if written <= 0 { if errno == EINTR { continue }; return }
            offset += written
        }
    }
}

/// Removes ipc directories whose owning client process no longer exists.
private func removeStaleDirectories(in base: String, logger: Logger) {
    guard let dir = opendir(base) else { return }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        guard let dash = name.firstIndex(of: "-"), let pid = Int32(name[..<dash]) else { continue }
        if kill(pid, 0) != 0 && errno == ESRCH {
            logger.debug("removing stale hub directory \(base)/\(name)")
            removeDirectory("\(base)/\(name)")
        }
    }
}

/// Removes a hub directory and the socket files in it.
func removeDirectory(_ path: String) {
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            unlink("\(path)/\(name)")
        }
        closedir(dir)
    }
    rmdir(path)
}

/// A logger for the runtime; `EXECNET_DEBUG=1` turns on debug messages.
func makeExecnetLogger(label: String) -> Logger {
    var logger = Logger(label: label)
    if let flag = getenv("EXECNET_DEBUG"), String(cString: flag) != "", String(cString: flag) != "0" {
        logger.logLevel = .debug
    } else {
        logger.logLevel = .info
    }
    return logger
}
