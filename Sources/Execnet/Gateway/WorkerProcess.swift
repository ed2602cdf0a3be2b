// Starting a worker process: finding its executable, posix_spawn with stdin on /dev/null and
// stdout/stderr on pipes, a pidfd to watch it, and reaping it. Called on the I/O thread, which
// lives as long as the client, so the worker's parent-death signal stays armed.

import CExecnetShims
#if canImport(Glibc)
import Glibc
#endif

/// A started worker process: its pid, pidfd and the read ends of its output pipes.
struct SpawnedWorker: Sendable {
    let pid: pid_t
    let pidfd: Int32
    let stdout: Int32
    let stderr: Int32
}

enum WorkerProcess {
    /// The executable name looked for beside the current program and on `PATH`.
    static let stockWorkerName = "execnet-worker"

    /// Finds the worker executable: `worker=` in the spec, else `$EXECNET_WORKER`, else
    /// `execnet-worker` beside the current executable, else on `PATH`.
    ///
    /// - Throws: ``ExecnetError`` `workerNotFound` listing every path tried.
    static func resolveExecutable(spec: XSpec) throws -> String {
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
    static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments.first ?? "" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The file descriptor on which a worker started with a credential reads it.
    static let credentialFD: Int32 = 3

    /// Spawns `executable` with `environment` (`NAME=value` strings), stdin on /dev/null and
    /// stdout/stderr on new pipes.
    ///
    /// - Parameters:
    ///   - credential: Bytes the child can read, once, from a pipe on fd ``credentialFD`` (3) and
    ///     from nowhere else: not its environment, not its arguments.
    ///   - user: The uid and gid the child runs as (supplementary groups dropped); needs root.
    /// - Throws: ``ExecnetError`` `transport` if a pipe, the spawn or the pidfd fails.
    static func spawn(executable: String, arguments: [String], environment: [String], credential: [UInt8]? = nil,
                      user: (uid: uid_t, gid: gid_t)? = nil) throws -> SpawnedWorker {
        var credentialPipe: [Int32] = [-1, -1]
        if let credential {
            // Small enough for the pipe's buffer: written whole before the child exists.
            guard credential.count < 4096, cexecnet_pipe_cloexec(&credentialPipe) == 0 else { throw systemError("pipe2") }
            let written = credential.withUnsafeBytes { write(credentialPipe[1], $0.baseAddress, $0.count) }
            close(credentialPipe[1])
            if credentialPipe[0] == credentialFD {
                // dup2 onto itself would keep close-on-exec: move it out of the way first.
                let moved = fcntl(credentialPipe[0], F_DUPFD_CLOEXEC, credentialFD + 1)
                close(credentialPipe[0])
                credentialPipe[0] = moved
            }
            guard written == credential.count, credentialPipe[0] >= 0 else {
                if credentialPipe[0] >= 0 { close(credentialPipe[0]) }
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

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        if credentialPipe[0] >= 0 { posix_spawn_file_actions_adddup2(&actions, credentialPipe[0], credentialFD) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        var rc: Int32
        if let user {
            pid = cexecnet_spawn_as_user(executable, argv, envp, outPipe[1], errPipe[1], credentialPipe[0], user.uid, user.gid)
            rc = pid < 0 ? errno : 0
        } else {
            rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw ExecnetError(.transport, "posix_spawn \(executable) failed: \(String(cString: strerror(rc)))")
        }
        let pidfd = cexecnet_pidfd_open(pid)
        guard pidfd >= 0 else {
            let error = systemError("pidfd_open")
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            close(outPipe[0]); close(errPipe[0])
            throw error
        }
        _ = fcntl(outPipe[0], F_SETFL, fcntl(outPipe[0], F_GETFL) | O_NONBLOCK)
        _ = fcntl(errPipe[0], F_SETFL, fcntl(errPipe[0], F_GETFL) | O_NONBLOCK)
        return SpawnedWorker(pid: pid, pidfd: pidfd, stdout: outPipe[0], stderr: errPipe[0])
    }

    /// Reaps the process behind `pidfd` if it has exited.
    ///
    /// - Returns: How it ended, or `nil` if it is still running.
    static func reap(pidfd: Int32) -> WorkerExit? {
        var code: Int32 = 0
        var signaled: Int32 = 0
        let rc = cexecnet_waitid_pidfd(pidfd, &code, &signaled)
        guard rc == 1 else { return nil }
        return signaled != 0 ? .signaled(code) : .exited(code)
    }

    /// The process environment as `NAME=value` strings.
    static func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }

    static func systemError(_ operation: String) -> ExecnetError {
        let code = errno
        return ExecnetError(.transport, "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}
