// RSync: one source directory to many gateways at once, as execnet's `RSync`, over an ordinary
// task channel per target (the worker's `execnet.rsync` task). The source is listed once; each
// target runs on a thread of its own (file reads and hashing block), and a failing target fails
// alone. Messages: docs/PROTOCOL.md, "The rsync task".

import ExecnetCore
import ExecnetValue
import Synchronization

/// Copies a directory to one or more gateways, sending only what differs.
///
/// ```swift
/// let rsync = RSync(sourceDirectory: "src", filter: RSyncFilter(ignoring: ["*.pyc", ".git"]))
/// rsync.addTarget(gateway1, destination: "/tmp/work/src", delete: true)
/// rsync.addTarget(gateway2, destination: "/tmp/work/src")
/// try await rsync.send { progress in print(progress) }
/// ```
///
/// Each target lists its destination against the source: directories are made and symbolic links
/// copied as links (an absolute link into the source becomes relative, so it points into the
/// destination); a regular file is sent when the target lacks it or has different content (the
/// target hashes its copy with SHA-256 when the size matches, and an equal hash is not resent).
/// Modes and modification times are kept. With `delete`, what the source does not have is removed
/// from the destination. Files travel in 256 KiB chunks within the channel's flow-control window,
/// so neither side holds a whole file in memory; each arrives in a temporary file that is renamed
/// into place once complete.
///
/// The worker side never follows a symbolic link inside the destination when writing or deleting,
/// refuses paths that would leave it, and refuses a destination that is a link, belongs to another
/// user or is writable by others (docs/SECURITY.md).
public final class RSync: Sendable {
    /// One destination on one gateway.
    public struct Target: Sendable, Hashable, CustomStringConvertible {
        /// The gateway's id.
        public let gatewayID: String
        /// The destination directory on that gateway's host (relative to the worker's directory
        /// unless absolute).
        public let destination: String

        public var description: String { "\(gatewayID):\(destination)" }
    }

    private struct Registration: Sendable {
        let gateway: Gateway
        let target: Target
        let delete: Bool
        let finished: (@Sendable () -> Void)?
    }

    private struct State {
        var registrations: [Registration] = []
        var sent = false
        var taskName = RSyncWire.taskName
    }

    /// The directory to copy.
    public let sourceDirectory: String
    /// Which of its paths are copied.
    public let filter: RSyncFilter
    private let state = Mutex(State())

    /// Prepares copying `sourceDirectory`.
    ///
    /// - Parameters:
    ///   - sourceDirectory: The local directory whose contents are copied (not the directory
    ///     itself: its entries become the destination's entries).
    ///   - filter: Which paths to copy; by default all.
    public init(sourceDirectory: String, filter: RSyncFilter = RSyncFilter()) {
        self.sourceDirectory = sourceDirectory
        self.filter = filter
    }

    /// Adds a target: `destination` on `gateway`'s host.
    ///
    /// - Parameters:
    ///   - gateway: A started gateway (popen, ssh or broker); its worker needs the `execnet.rsync`
    ///     task, which every worker built on this runtime has.
    ///   - destination: The destination directory there, created if missing.
    ///   - delete: Whether to remove what the source does not have (ignored paths included).
    ///   - finished: Called once this target has completed successfully.
    public func addTarget(_ gateway: Gateway, destination: String, delete: Bool = false,
                          finished: (@Sendable () -> Void)? = nil) {
        let registration = Registration(gateway: gateway, target: Target(gatewayID: gateway.id, destination: destination),
                                        delete: delete, finished: finished)
        state.withLock { $0.registrations.append(registration) }
    }

    /// The targets added so far.
    public var targets: [Target] { state.withLock { $0.registrations.map(\.target) } }

    /// Copies the source to every target at once and returns when all have finished.
    ///
    /// A target that fails does not stop the others; after all have ended, the failures are
    /// thrown together. An `RSync` sends once (as execnet's). Cancelling the caller closes every
    /// transfer's channel: each target then fails with `cancelled` (the workers discard a partly
    /// received file).
    ///
    /// - Parameter progress: Called (on a transfer thread, so quickly) as each target plans,
    ///   sends chunks and files, and finishes.
    /// - Throws: ``RSyncSendError`` with one ``RSyncError`` per failed target; or with a single
    ///   error without a target for `noTargets`, `alreadySent` or a `sourceUnreadable` source.
    public func send(progress: (@Sendable (RSyncProgress) -> Void)? = nil) async throws(RSyncSendError) {
        let (registrations, taskName): ([Registration], String) = state.withLock { state in
            if state.sent { return ([], state.taskName) }
            state.sent = true
            return (state.registrations, state.taskName)
        }
        if registrations.isEmpty {
            let sent = state.withLock { $0.registrations.isEmpty == false }
            throw RSyncSendError(failures: [sent ? RSyncError(.alreadySent, "this RSync has sent already")
                                                 : RSyncError(.noTargets, "no targets: call addTarget first")],
                                 completed: [])
        }
        let directory = sourceDirectory, filter = filter
        let listed = await onThread { () -> Result<RSyncSource, RSyncError> in
            do throws(RSyncError) { return .success(try RSyncSource(directory: directory, filter: filter)) }
            catch { return .failure(error) }
        }
        let source: RSyncSource
        switch listed {
        case .success(let value): source = value
        case .failure(let error): throw RSyncSendError(failures: [error], completed: [])
        }
        let cancellation = RSyncCancellation()
        let results = await withTaskCancellationHandler {
            await withTaskGroup(of: (Int, RSyncError?).self) { group in
                for (position, registration) in registrations.enumerated() {
                    group.addTask {
                        let failure = await onThread {
                            RSyncTransfer(gateway: registration.gateway, target: registration.target, taskName: taskName,
                                          delete: registration.delete, source: source, progress: progress,
                                          cancellation: cancellation).run()
                        }
                        if failure == nil { registration.finished?() }
                        return (position, failure)
                    }
                }
                var results = [RSyncError?](repeating: nil, count: registrations.count)
                for await (position, failure) in group { results[position] = failure }
                return results
            }
        } onCancel: {
            cancellation.cancel()
        }
        let failures = results.compactMap { $0 }
        if !failures.isEmpty {
            let completed = zip(registrations, results).filter { $0.1 == nil }.map(\.0.target)
            throw RSyncSendError(failures: failures, completed: completed)
        }
    }

    /// Makes transfers run the worker task `name` instead of `execnet.rsync` (tests of hostile workers).
    package func useTask(_ name: String) {
        state.withLock { $0.taskName = name }
    }
}

/// Set when the caller of ``RSync/send(progress:)`` is cancelled: closes every transfer's channel,
/// so a transfer blocked on its worker (or on credit) ends at once.
final class RSyncCancellation: Sendable {
    private let state = Mutex<(cancelled: Bool, channels: [Channel])>((false, []))

    func cancel() {
        let channels = state.withLock { state in
            state.cancelled = true
            defer { state.channels = [] }
            return state.channels
        }
        for channel in channels { try? channel.close(error: "RSync cancelled") }
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Registers a transfer's channel; `false` (and the channel closed) if cancelled already.
    func register(_ channel: Channel) -> Bool {
        let cancelled = state.withLock { state in
            if !state.cancelled { state.channels.append(channel) }
            return state.cancelled
        }
        if cancelled { try? channel.close(error: "RSync cancelled") }
        return !cancelled
    }
}

/// Runs blocking work on a thread of its own and returns its result.
private func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        OSThread(name: "execnet-rsync") { continuation.resume(returning: body()) }.detach()
    }
}
