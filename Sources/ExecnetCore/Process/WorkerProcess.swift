// Starting a worker process: finding its executable, spawning it (stdin on /dev/null, stdout/stderr
// on pipes, a process group of its own, a parent-death signal), a pidfd to watch it, and reaping it
// together with its process group. Called on the I/O thread, which lives as long as the client, so
// the worker's parent-death signal stays armed.

import CExecnetShims
#if canImport(Glibc)
import Glibc
#endif

/// A started worker process: its pid, pidfd and the read ends of its output pipes.
package struct SpawnedWorker: Sendable {
    package let pid: pid_t
    package let pidfd: Int32
    package let stdout: Int32
    package let stderr: Int32
}

package enum WorkerProcess {
    /// The executable name looked for beside the current program and on `PATH`.
    package static let stockWorkerName = "execnet-worker"

    /// Finds the worker executable: `worker=` in the spec, else `$EXECNET_WORKER`, else
    /// `execnet-worker` beside the current executable, else on `PATH`.
    ///
    /// - Throws: ``ExecnetError`` `workerNotFound` listing every path tried.
    package static func resolveExecutable(spec: XSpec) throws -> String {
        var tried: [String] = []
        func usable(_ path: String) -> Bool {
            tried.append(path)
            return access(path, X_OK) == 0
        }
        if let explicit = spec.worker {
            let path = explicit == "self" ? currentExecutable() : explicit
            if usable(path) { return path }
            throw ExecnetError(.workerNotFound, "worker executable not found or not executable; tried: \(tried.joined(separator: ", "))")
        }
        if let fromEnvironment = getenv("EXECNET_WORKER").map({ String(cString: $0) }), !fromEnvironment.isEmpty {
            if usable(fromEnvironment) { return fromEnvironment }
        }
        let own = currentExecutable()
        if let slash = own.lastIndex(of: "/") {
            let beside = String(own[..<slash]) + "/" + stockWorkerName
            if usable(beside) { return beside }
        }
        let searchPath = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            if usable(directory + "/" + stockWorkerName) { return directory + "/" + stockWorkerName }
        }
        throw ExecnetError(.workerNotFound, "no worker executable found; tried: \(tried.joined(separator: ", ")) (set worker=PATH in the spec or EXECNET_WORKER)")
    }

    /// The path of the running program.
    package static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments.first ?? "" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The file descriptor on which a worker started with a credential reads it.
    package static let credentialFD: Int32 = 3

    /// Spawns `executable` with `environment` (`NAME=value` strings), stdin on /dev/null and
    /// stdout/stderr on new pipes.
    ///
    /// - Parameters:
    ///   - cwd: The directory the process starts in; `nil` keeps ours.
    ///   - newProcessGroup: Whether the process leads a process group of its own, so that it and
    ///     everything it starts can be killed together (``killGroup(_:)``).
    ///   - parentDeathSignal: A signal the process gets when the *calling thread* ends (Linux's
    ///     parent-death signal, armed before the program runs); `nil` for none.
    ///   - credential: Bytes the child can read, once, from a pipe on fd ``credentialFD`` (3) and
    ///     from nowhere else: not its environment, not its arguments.
    ///   - user: The uid and gid the child runs as (supplementary groups dropped); needs root.
    ///   - stdin: A descriptor the child gets as its stdin instead of /dev/null (the caller closes
    ///     its own copy).
    /// - Throws: ``ExecnetError`` `transport` if a pipe, the spawn or the pidfd fails.
    package static func spawn(executable: String, arguments: [String], environment: [String], cwd: String? = nil,
                      newProcessGroup: Bool = true, parentDeathSignal: Int32? = nil, credential: [UInt8]? = nil,
                      user: (uid: uid_t, gid: gid_t)? = nil, stdin: Int32? = nil) throws -> SpawnedWorker {
        var credentialPipe: [Int32] = [-1, -1]
        if let credential {
            // Small enough for the pipe's buffer: written whole before the child exists.
            guard credential.count < 4096, cexecnet_pipe_cloexec(&credentialPipe) == 0 else { throw systemError("pipe2") }
            let written = credential.withUnsafeBytes { write(credentialPipe[1], $0.baseAddress, $0.count) }
            close(credentialPipe[1])
            guard written == credential.count else {
                close(credentialPipe[0])
                throw systemError("write")
            }
        }
        defer { if credentialPipe[0] >= 0 { close(credentialPipe[0]) } }
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard cexecnet_pipe_cloexec(&outPipe) == 0 else { throw systemError("pipe2") }
        guard cexecnet_pipe_cloexec(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw systemError("pipe2")
        }
        defer { close(outPipe[1]); close(errPipe[1]) }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = withOptionalCString(cwd) { cwdPointer in
            cexecnet_spawn_stdin(executable, argv, envp, stdin ?? -1, outPipe[1], errPipe[1], credentialPipe[0], cwdPointer,
                           newProcessGroup ? 1 : 0, parentDeathSignal ?? 0, user == nil ? 0 : 1,
                           user?.uid ?? 0, user?.gid ?? 0, &pid)
        }
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            let place = cwd.map { " in \($0)" } ?? ""
            throw ExecnetError(.transport, "starting \(executable)\(place) failed: \(String(cString: strerror(rc)))")
        }
        let pidfd = cexecnet_pidfd_open(pid)
        guard pidfd >= 0 else {
            let error = systemError("pidfd_open")
            if newProcessGroup { Glibc.kill(-pid, SIGKILL) }
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            close(outPipe[0]); close(errPipe[0])
            throw error
        }
        _ = fcntl(outPipe[0], F_SETFL, fcntl(outPipe[0], F_GETFL) | O_NONBLOCK)
        _ = fcntl(errPipe[0], F_SETFL, fcntl(errPipe[0], F_GETFL) | O_NONBLOCK)
        return SpawnedWorker(pid: pid, pidfd: pidfd, stdout: outPipe[0], stderr: errPipe[0])
    }

    /// Kills the process group a worker leads (the worker and everything it started that stayed in
    /// its group) with SIGKILL.
    ///
    /// Call it only while the leader is running or a zombie (before ``reap(pidfd:killingGroup:)``
    /// reaps it): until then its pid, which is the group's id, cannot be reused.
    package static func killGroup(_ leader: pid_t) {
        guard leader > 0 else { return }
        _ = Glibc.kill(-leader, SIGKILL)
    }

    /// Reaps the process behind `pidfd` if it has exited, first killing the process group it led
    /// (what it started dies with it).
    ///
    /// - Returns: How it ended, or `nil` if it is still running.
    package static func reap(pidfd: Int32, killingGroup leader: pid_t) -> WorkerExit? {
        guard cexecnet_pidfd_exited(pidfd) == 1 else { return nil }
        killGroup(leader)
        return reap(pidfd: pidfd)
    }

    /// Reaps the process behind `pidfd` if it has exited.
    ///
    /// - Returns: How it ended, or `nil` if it is still running.
    package static func reap(pidfd: Int32) -> WorkerExit? {
        var code: Int32 = 0
        var signaled: Int32 = 0
        let rc = cexecnet_waitid_pidfd(pidfd, &code, &signaled)
        guard rc == 1 else { return nil }
        return signaled != 0 ? .signaled(code) : .exited(code)
    }

    /// The process environment as `NAME=value` strings.
    package static func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }

    private static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }

    package static func systemError(_ operation: String) -> ExecnetError {
        let code = errno
        return ExecnetError(.transport, "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}
