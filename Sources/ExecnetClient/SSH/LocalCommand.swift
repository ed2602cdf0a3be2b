// Runs a local program to its end with bytes on its stdin, collecting its stdout and stderr: the
// bundle maker's `ldd` and `patchelf`, and the tests' local runners. Blocking: call it from a
// thread that may block (LocalCommand.runDetached for async callers).

#if canImport(Glibc)
import Glibc
#endif

import CExecnetShims
import ExecnetCore

/// Runs local programs to completion (no shell, no Foundation).
package enum LocalCommand {
    /// Why a local program could not be started.
    package struct StartFailure: Error, Sendable, CustomStringConvertible {
        /// The program's name or path.
        package var program: String
        /// `errno` of the failed spawn (`ENOENT`: not found).
        package var code: Int32

        package var description: String { "cannot start \(program): \(String(cString: strerror(code)))" }
    }

    /// Runs `arguments[0]` (looked up in `PATH` if it has no slash) with `arguments`, `input` on
    /// its stdin and the environment `environment` (`nil`: ours), and waits for it to exit.
    ///
    /// Blocks the calling thread. The stdin is a socket pair (so that a program which exits
    /// without reading its input costs no SIGPIPE); the status is the exit code, or 128 plus the
    /// signal number.
    ///
    /// - Throws: ``StartFailure`` if the program cannot be started.
    package static func run(_ arguments: [String], input: [UInt8] = [], environment: [String]? = nil) throws -> RemoteCommandResult {
        precondition(!arguments.isEmpty)
        var inputPair: [Int32] = [-1, -1]
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &inputPair) == 0 else {
            throw StartFailure(program: arguments[0], code: errno)
        }
        guard cexecnet_pipe_cloexec(&outPipe) == 0 else {
            let code = errno
            close(inputPair[0]); close(inputPair[1])
            throw StartFailure(program: arguments[0], code: code)
        }
        guard cexecnet_pipe_cloexec(&errPipe) == 0 else {
            let code = errno
            close(inputPair[0]); close(inputPair[1]); close(outPipe[0]); close(outPipe[1])
            throw StartFailure(program: arguments[0], code: code)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inputPair[1], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp ?? [] { free(pointer) }
        }
        var pid: pid_t = 0
        let rc: Int32
        if let envp {
            rc = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        } else {
            rc = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        }
        close(inputPair[1]); close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(inputPair[0]); close(outPipe[0]); close(errPipe[0])
            throw StartFailure(program: arguments[0], code: rc)
        }

        var inputFD: Int32 = inputPair[0]
        var offset = 0
        if input.isEmpty { close(inputFD); inputFD = -1 }
        var outFD = outPipe[0], errFD = errPipe[0]
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while inputFD >= 0 || outFD >= 0 || errFD >= 0 {
            var fds: [pollfd] = []
            if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
            if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
            if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == inputFD {
                    let count = input[offset...].withUnsafeBytes { bytes in
                        send(inputFD, bytes.baseAddress, min(bytes.count, 1 << 20), Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                    }
                    if count > 0 { offset += count }
                    if (count < 0 && errno != EINTR && errno != EAGAIN) || offset == input.count {
                        close(inputFD); inputFD = -1
                    }
                } else {
                    let count = read(entry.fd, &buffer, buffer.count)
                    if count > 0 {
                        if entry.fd == outFD { stdout += buffer[0..<count] } else { stderr += buffer[0..<count] }
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(entry.fd)
                        if entry.fd == outFD { outFD = -1 } else { errFD = -1 }
                    }
                }
            }
        }
        if inputFD >= 0 { close(inputFD) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return RemoteCommandResult(status: exitStatus, stdout: stdout, stderr: stderr)
    }

    /// ``run(_:input:environment:)`` on a thread of its own, for async callers (never blocks the
    /// cooperative pool).
    package static func runDetached(_ arguments: [String], input: [UInt8] = [], environment: [String]? = nil) async throws -> RemoteCommandResult {
        try await withCheckedThrowingContinuation { continuation in
            OSThread(name: "execnet-command") {
                continuation.resume(with: Result { try run(arguments, input: input, environment: environment) })
            }.detach()
        }
    }
}
