// The client side's process-wide runtime: one I/O thread running the embedded hub, its private ipc
// directory (under a base directory that must be ours with mode 0700), and clean-up at exit.
// Started on first use; stale directories of killed clients are removed when the next one starts,
// never through a symbolic link.

import ExecnetCore
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
    /// Gateway starts, deaths and terminate outcomes, for the metrics (ClientMetrics.swift).
    let counters = ClientCounters()
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
        let base = try Self.preparedBaseDirectory()
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
        let counters = self.counters
        do {
            io = try IOThread(name: "execnet-io") {
                Hub(endpoint: endpoint, context: context, logger: logger, counters: counters)
            }
        } catch {
            removeDirectory(directory)
            throw ExecnetError(.transport, "the embedded hub could not start: \(error)", cause: error)
        }
    }

    /// The directory that holds each client's hub directory: `$XDG_RUNTIME_DIR/execnet` when
    /// `XDG_RUNTIME_DIR` names a private directory of ours, else `/tmp/execnet-<uid>`.
    static func baseDirectory() -> String {
        let uid = geteuid()
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), runtime.hasPrefix("/"),
            privateDirectoryProblem(runtime, owner: uid) == nil {
            return runtime + "/execnet"
        }
        return "/tmp/execnet-\(uid)"
    }

    /// The base directory, created if missing, checked with `lstat`: a directory (not a symbolic
    /// link) owned by us that no other user can enter, whoever made it.
    ///
    /// - Throws: ``ExecnetError`` `transport` naming the directory and what is wrong with it.
    static func preparedBaseDirectory() throws -> String {
        let base = baseDirectory()
        if mkdir(base, 0o700) != 0 && errno != EEXIST { throw WorkerProcess.systemError("mkdir \(base)") }
        if let problem = privateDirectoryProblem(base, owner: geteuid()) {
            throw ExecnetError(.transport, """
                the execnet runtime directory \(base) \(problem): another user may have made it; remove it \
                (or set XDG_RUNTIME_DIR to a private directory)
                """)
        }
        return base
    }

    /// A worker address unique in this process, and at any broker it shares with other clients.
    func nextRoutingID(for gatewayID: String) -> [UInt8] {
        let number = routingCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return Array("w\(number).\(addressToken).\(gatewayID)".utf8)
    }

    /// Publishes the metrics now (when a backend was bootstrapped) and returns once they are.
    func publishMetrics() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            if !io.submit(.publishMetrics(done)) { done.resume() }
        }
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

/// Why `path` is not a private directory of `owner` (a directory, not a symbolic link, owned by
/// `owner`, with no access for group or others), or `nil` if it is one. Uses `lstat`: ownership
/// is what counts, since root passes every `access` check.
func privateDirectoryProblem(_ path: String, owner: uid_t) -> String? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return "cannot be examined (errno \(errno))" }
    switch info.st_mode & S_IFMT {
    case S_IFDIR: break
    case S_IFLNK: return "is a symbolic link"
    default: return "is not a directory"
    }
    if info.st_uid != owner { return "is owned by uid \(info.st_uid), not \(owner)" }
    if info.st_mode & 0o077 != 0 { return "has mode 0\(String(info.st_mode & 0o7777, radix: 8)), not 0700" }
    return nil
}

/// Removes ipc directories whose owning client process no longer exists. Only directories owned
/// by us are touched, and no symbolic link is followed (a link named like a dead client's
/// directory is left alone, and so is what it points to).
private func removeStaleDirectories(in base: String, logger: Logger) {
    let baseFD = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard baseFD >= 0 else { return }
    defer { close(baseFD) }
    for name in directoryEntries(baseFD) {
        guard let dash = name.firstIndex(of: "-"), let pid = Int32(name[..<dash]), pid > 0 else { continue }
        if kill(pid, 0) != 0 && errno == ESRCH, removeDirectory(named: name, in: baseFD) {
            logger.debug("removed stale hub directory \(base)/\(name)")
        }
    }
}

/// The names in the directory open as `fd` (without `.` and `..`); `fd` stays open.
private func directoryEntries(_ fd: Int32) -> [String] {
    let copy = dup(fd)
    guard copy >= 0 else { return [] }
    guard let dir = fdopendir(copy) else {
        close(copy)
        return []
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Removes the directory `name` in the directory open as `parentFD`, and the files (sockets) in
/// it, if it is a directory owned by us; never follows a symbolic link.
///
/// - Returns: Whether it was removed.
@discardableResult
private func removeDirectory(named name: String, in parentFD: Int32) -> Bool {
    var info = stat()
    guard fstatat(parentFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFDIR,
        info.st_uid == geteuid()
    else { return false }
    let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { return false }
    // unlinkat without AT_REMOVEDIR removes a link itself, never its target, and no subdirectory.
    for entry in directoryEntries(fd) { unlinkat(fd, entry, 0) }
    close(fd)
    return unlinkat(parentFD, name, AT_REMOVEDIR) == 0
}

/// Removes a hub directory and the socket files in it (see ``removeDirectory(named:in:)``).
func removeDirectory(_ path: String) {
    guard let slash = path.lastIndex(of: "/") else { return }
    let parent = slash == path.startIndex ? "/" : String(path[..<slash])
    let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard parentFD >= 0 else { return }
    defer { close(parentFD) }
    removeDirectory(named: String(path[path.index(after: slash)...]), in: parentFD)
}

/// Publishes this process's client metrics now (when a metrics backend was bootstrapped), rather
/// than at the hub's next once-a-second publish; starts the runtime if it has not started.
package func publishClientMetrics() async {
    guard let runtime = try? await ClientRuntime.started() else { return }
    await runtime.publishMetrics()
}
