// The worker processes of one I/O-thread role (the client's hub, a host agent), supervised in the
// role's poll loop: each is spawned in a process group of its own with a parent-death signal, its
// pidfd and its stdout/stderr pipes join the loop, its output is cut into lines (OutputLineSplitter)
// and given with the stream it came from, and its exit is reaped and reported once, after the
// output it wrote before dying and after its process group (what it started) was killed.
// Everything here runs on the role's I/O thread.

import CExecnetShims
#if canImport(Glibc)
import Glibc
#endif

/// Which output stream of a worker a line came from.
public enum WorkerOutputStream: Sendable {
    /// The worker's standard output.
    case stdout
    /// The worker's standard error.
    case stderr
}

/// Where a worker's stdout and stderr lines go: the gateway id, the stream, and the line's bytes
/// (without the newline).
public typealias WorkerOutputHandler = @Sendable (_ gatewayID: String, _ stream: WorkerOutputStream, _ line: [UInt8]) -> Void

/// Writes each worker output line to this process's stderr, prefixed with the gateway id.
@Sendable
package func defaultOutputHandler(_ gatewayID: String, _ stream: WorkerOutputStream, _ line: [UInt8]) {
    var bytes = Array("[\(gatewayID)] ".utf8)
    bytes.append(contentsOf: line)
    bytes.append(UInt8(ascii: "\n"))
    // One write per line where it fits, so lines of several workers do not mix.
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = write(2, raw.baseAddress! + offset, raw.count - offset)
            if written <= 0 { if errno == EINTR { continue }; return }
            offset += written
        }
    }
}

/// The worker processes of one I/O-thread role, keyed by what the role calls them.
///
/// - Important: Used on its role's I/O thread only. The handlers are called there, synchronously;
///   they may call back into the supervisor (signal another process, spawn one).
package final class ProcessSupervisor<Key: Hashable> {
    /// Called for each line (or piece of an over-long line) a process writes.
    package typealias LineHandler = (_ key: Key, _ stream: WorkerOutputStream, _ line: [UInt8]) -> Void
    /// Called once when a process has exited and was reaped, after its last output lines.
    package typealias ExitHandler = (_ key: Key, _ exit: WorkerExit) -> Void

    private struct Process {
        let pid: pid_t
        let pidfd: Int32
        /// The write end of the process's stdin pipe, when it has one (closed at its exit).
        var stdinFD: Int32 = -1
        /// The output pipes not yet at end of file.
        var outputFDs: [Int32]
    }

    private struct Output {
        let key: Key
        let stream: WorkerOutputStream
        var lines: OutputLineSplitter
    }

    private unowned let loop: IOLoop
    private let onLine: LineHandler
    private let onExit: ExitHandler
    private let maximumLineLength: Int
    private var processes: [Key: Process] = [:]
    private var outputs: [Int32: Output] = [:]
    /// One read buffer for every pipe.
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Reads of one pipe per readiness: a worker that writes without pause cannot hold the loop.
    package static var readsPerTurn: Int { 16 }
    /// Reads of one pipe once its process has exited: what it wrote (a pipe holds 64 KiB by
    /// default) and a bound on what something that escaped its process group may add.
    package static var readsAtExit: Int { 64 }

    /// Creates the supervisor of a role.
    ///
    /// - Parameters:
    ///   - loop: The role's poll loop; it outlives the role, and so this supervisor.
    ///   - maximumLineLength: The longest line given whole (see ``OutputLineSplitter``).
    ///   - onLine: Gets each output line.
    ///   - onExit: Gets each exit, once.
    package init(loop: IOLoop, maximumLineLength: Int = OutputLineSplitter.defaultMaximumLineLength,
         onLine: @escaping LineHandler, onExit: @escaping ExitHandler) {
        self.loop = loop
        self.maximumLineLength = maximumLineLength
        self.onLine = onLine
        self.onExit = onExit
    }

    /// The number of processes running (not yet reported as exited).
    package var count: Int { processes.count }

    /// Whether a process runs under `key`.
    package func contains(_ key: Key) -> Bool { processes[key] != nil }

    /// The pid of the process under `key`, while it runs.
    package func pid(of key: Key) -> pid_t? { processes[key]?.pid }

    /// Starts a worker process under `key`: stdin on /dev/null, stdout and stderr watched, a
    /// process group of its own, and SIGKILL when this (I/O) thread ends.
    ///
    /// - Parameters:
    ///   - arguments: Its arguments (after the executable's path).
    ///   - credential: Bytes the worker reads once from fd ``WorkerProcess/credentialFD``.
    ///   - user: The uid and gid it runs as (needs root).
    ///   - holdingStdin: Whether its stdin is a pipe this supervisor holds open (never writing) until
    ///     the process exits, instead of /dev/null: the process sees end of file on its stdin only
    ///     when this process dies (an `ssh` client then ends its remote session).
    /// - Returns: Its pid.
    /// - Throws: ``ExecnetError`` `invalidState` if a process runs under `key` already, `transport`
    ///   if it cannot be started.
    @discardableResult
    package func spawn(_ key: Key, executable: String, arguments: [String] = [], environment: [String],
               credential: [UInt8]? = nil, user: (uid: uid_t, gid: gid_t)? = nil, holdingStdin: Bool = false) throws -> pid_t {
        guard processes[key] == nil else {
            throw ExecnetError(.invalidState, "a worker process runs under this address already")
        }
        var stdinPipe: [Int32] = [-1, -1]
        if holdingStdin, cexecnet_pipe_cloexec(&stdinPipe) != 0 { throw WorkerProcess.systemError("pipe2") }
        // The parent-death signal is armed for this thread: the I/O thread, which lives as long as its role.
        let spawned: SpawnedWorker
        do {
            defer { if stdinPipe[0] >= 0 { close(stdinPipe[0]) } }
            spawned = try WorkerProcess.spawn(executable: executable, arguments: arguments, environment: environment,
                                              newProcessGroup: true, parentDeathSignal: SIGKILL,
                                              credential: credential, user: user, stdin: holdingStdin ? stdinPipe[0] : nil)
        } catch {
            if stdinPipe[1] >= 0 { close(stdinPipe[1]) }
            throw error
        }
        processes[key] = Process(pid: spawned.pid, pidfd: spawned.pidfd, stdinFD: stdinPipe[1],
                                 outputFDs: [spawned.stdout, spawned.stderr])
        loop.addFileDescriptor(spawned.pidfd) { [unowned self] in self.pidfdReadable(key) }
        for (fd, stream) in [(spawned.stdout, WorkerOutputStream.stdout), (spawned.stderr, .stderr)] {
            outputs[fd] = Output(key: key, stream: stream, lines: OutputLineSplitter(maximumLineLength: maximumLineLength))
            loop.addFileDescriptor(fd) { [unowned self] in self.drain(fd, reads: Self.readsPerTurn) }
        }
        return spawned.pid
    }

    /// Sends `signal` to the process under `key` through its pidfd (no pid-reuse race).
    ///
    /// - Returns: Whether a process runs under `key` and the signal was sent.
    @discardableResult
    package func signal(_ key: Key, _ signal: Int32) -> Bool {
        guard let process = processes[key] else { return false }
        return cexecnet_pidfd_send_signal(process.pidfd, signal) == 0
    }

    /// Kills every process and its group, reaps each within `bound` in all, and closes their
    /// descriptors. No exit is reported: the role is ending.
    package func terminateAll(within bound: Duration) {
        for process in processes.values {
            // Not reaped yet, so the group id is still the leader's.
            WorkerProcess.killGroup(process.pid)
            _ = cexecnet_pidfd_send_signal(process.pidfd, SIGKILL)
        }
        let deadline = ContinuousClock.now.advanced(by: bound)
        for process in processes.values {
            var pfd = pollfd(fd: process.pidfd, events: Int16(POLLIN), revents: 0)
            let left = max(.zero, ContinuousClock.now.duration(to: deadline))
            _ = poll(&pfd, 1, left.clampedMilliseconds)
            _ = WorkerProcess.reap(pidfd: process.pidfd)
            loop.removeFileDescriptor(process.pidfd)
            close(process.pidfd)
            if process.stdinFD >= 0 { close(process.stdinFD) }
        }
        for fd in outputs.keys {
            loop.removeFileDescriptor(fd)
            close(fd)
        }
        processes = [:]
        outputs = [:]
    }

    // MARK: - Events

    /// The pidfd is readable: the process has exited. Its group is killed, it is reaped, what it
    /// wrote is given (with the partial last lines), its pipes are closed, and the exit reported.
    private func pidfdReadable(_ key: Key) {
        guard let process = processes[key],
              let exit = WorkerProcess.reap(pidfd: process.pidfd, killingGroup: process.pid)
        else { return }
        for fd in process.outputFDs { drain(fd, reads: Self.readsAtExit, closing: true) }
        loop.removeFileDescriptor(process.pidfd)
        close(process.pidfd)
        if process.stdinFD >= 0 { close(process.stdinFD) }
        processes[key] = nil
        onExit(key, exit)
    }

    /// Reads what a pipe holds (at most `reads` reads) and gives the lines it completes. At end of
    /// file, or with `closing`, the partial last line is given too and the pipe is closed.
    private func drain(_ fd: Int32, reads: Int, closing: Bool = false) {
        guard let output = outputs[fd] else { return }
        let (key, stream) = (output.key, output.stream)
        var lines = output.lines
        var atEnd = false
        var done = 0
        while done < reads {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                done += 1
                lines.feed(buffer[0..<count]) { onLine(key, stream, $0) }
                continue
            }
            if count < 0 && errno == EINTR { continue }
            // EAGAIN: nothing more now. End of file or an error: nothing more ever.
            atEnd = !(count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break
        }
        guard atEnd || closing else {
            outputs[fd]?.lines = lines
            return
        }
        lines.finish { onLine(key, stream, $0) }
        outputs[fd] = nil
        loop.removeFileDescriptor(fd)
        close(fd)
        processes[key]?.outputFDs.removeAll { $0 == fd }
    }
}
