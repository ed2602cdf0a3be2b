// Short shell scripts on an ssh gateway's host, run over the same ssh command line (and shared
// connection) as the gateway's session: the preparation of the remote private directory and the
// worker bundle's installation. Each run is an `ssh` process on a thread of its own (it writes the
// input and reads the output with poll, then waits), never on the cooperative pool.

import CExecnetShims
import ExecnetCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs POSIX shell scripts on an ssh gateway's host with the system's OpenSSH client.
package struct SSHCommandRunner: RemoteCommandRunner {
    /// The most output of either stream a script may write (more is cut, not held).
    static let outputLimit = 1 << 20

    let commandLine: SSHCommandLine

    /// A runner for `target`.
    ///
    /// - Throws: As ``SSHCommandLine/init(target:)``.
    package init(target: SSHTarget) throws {
        self.commandLine = try SSHCommandLine(target: target)
    }

    init(commandLine: SSHCommandLine) {
        self.commandLine = commandLine
    }

    /// The remote cache this runner reaches: the ssh arguments and configuration file (one
    /// installation per host at a time in this process).
    package var installKey: String? {
        (commandLine.target.configFile.map { ["-F", $0] } ?? []).joined(separator: " ") + " "
            + commandLine.target.arguments.joined(separator: " ")
    }

    /// Runs `script` with `/bin/sh` on the remote host, `input` on its stdin.
    ///
    /// - Returns: The script's exit status and output. A nonzero status is a result.
    /// - Throws: ``SSHError`` when ssh itself failed (exit status 255: no connection, refused
    ///   authentication, …) with ssh's text; ``ExecnetError`` `transport` if ssh could not start.
    package func run(script: String, input: [UInt8]) async throws -> RemoteCommandResult {
        let arguments = commandLine.arguments(remoteCommand: "exec /bin/sh -c " + shellQuoted(script))
        let executable = commandLine.executable
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RemoteCommandResult, any Error>) in
            OSThread(name: "execnet-ssh") {
                continuation.resume(with: Result {
                    try runLocalCommand(executable: executable, arguments: arguments, input: input,
                                        outputLimit: Self.outputLimit)
                })
            }.detach()
        }
        if result.status == 255 {
            let text = String(decoding: result.stderr, as: UTF8.self).trimmingTrailingNewlines()
            throw SSHError(SSHError.classify(text), destination: commandLine.target.destination, message: text)
        }
        return result
    }
}

/// Runs a local program to its end on the calling thread (which must not be on the cooperative
/// pool): `input` on its stdin, its stdout and stderr read (each up to `outputLimit` bytes).
///
/// - Returns: Its exit status (128 + the signal for a death by signal) and output.
/// - Throws: ``ExecnetError`` `transport` if it cannot start.
func runLocalCommand(executable: String, arguments: [String], input: [UInt8], outputLimit: Int) throws -> RemoteCommandResult {
    var stdinPipe: [Int32] = [-1, -1]
    guard cexecnet_pipe_cloexec(&stdinPipe) == 0 else { throw WorkerProcess.systemError("pipe2") }
    let spawned: SpawnedWorker
    do {
        defer { close(stdinPipe[0]) }
        // This thread waits for the process: its parent-death signal is right here.
        spawned = try WorkerProcess.spawn(executable: executable, arguments: arguments,
                                          environment: WorkerProcess.currentEnvironment(), newProcessGroup: true,
                                          parentDeathSignal: SIGKILL, stdin: stdinPipe[0])
    } catch {
        close(stdinPipe[1])
        throw error
    }
    var inputFD: Int32 = stdinPipe[1]
    _ = fcntl(inputFD, F_SETFL, fcntl(inputFD, F_GETFL) | O_NONBLOCK)
    var written = 0
    if input.isEmpty {
        close(inputFD)
        inputFD = -1
    }
    var outputs: [Int32: [UInt8]] = [spawned.stdout: [], spawned.stderr: []]
    var open: Set<Int32> = [spawned.stdout, spawned.stderr]
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while !open.isEmpty || inputFD >= 0 {
        var fds = open.sorted().map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
        let ready = poll(&fds, nfds_t(fds.count), -1)
        if ready < 0 {
            if errno == EINTR { continue }
            break
        }
        for entry in fds where entry.revents != 0 {
            if entry.fd == inputFD {
                let count = input.withUnsafeBytes { raw in
                    write(inputFD, raw.baseAddress! + written, min(raw.count - written, 64 * 1024))
                }
                if count > 0 { written += count }
                if written == input.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                    close(inputFD)
                    inputFD = -1
                }
                continue
            }
            let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
            if count > 0 {
                let room = max(0, outputLimit - outputs[entry.fd, default: []].count)
                outputs[entry.fd, default: []] += buffer[0..<min(count, room)]
            } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                open.remove(entry.fd)
            }
        }
    }
    if inputFD >= 0 { close(inputFD) }
    close(spawned.stdout)
    close(spawned.stderr)
    var pfd = pollfd(fd: spawned.pidfd, events: Int16(POLLIN), revents: 0)
    var exit: WorkerExit?
    while exit == nil {
        _ = poll(&pfd, 1, -1)
        exit = WorkerProcess.reap(pidfd: spawned.pidfd, killingGroup: spawned.pid)
    }
    close(spawned.pidfd)
    let status: Int32
    switch exit {
    case .exited(let code)?: status = code
    case .signaled(let signal)?: status = 128 + signal
    default: status = 255
    }
    return RemoteCommandResult(status: status, stdout: outputs[spawned.stdout] ?? [], stderr: outputs[spawned.stderr] ?? [])
}

extension String {
    /// The text without the newlines (and carriage returns) it ends with.
    func trimmingTrailingNewlines() -> String {
        var text = Substring(self)
        while let last = text.last, last == "\n" || last == "\r" || last == "\r\n" { text = text.dropLast() }
        return String(text)
    }
}
