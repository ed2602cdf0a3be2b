// Starting an ssh gateway. Before its first gateway to a host, the client prepares a private
// directory there (one short script over ssh); the worker is then started by one `ssh` process that
// the hub supervises like a popen worker: the same ROUTER, routing id and liveness, with the
// worker's stdout/stderr and ssh's own messages forwarded as its lines. The worker reaches the hub
// through the ssh connection itself: OpenSSH forwards a Unix socket in the remote private directory
// to the hub's ipc socket (`-R remote.sock:hub`), and the worker connects to `ipc://remote.sock`.
// No TCP port is opened on either host. The worker watches its stdin (the session's channel, which
// the hub holds open through ssh's stdin and never writes): its end of file means the client, the
// ssh client or the connection died, and the worker exits with what it started.

import ExecnetCore
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An ssh gateway's session, kept to undo on a shared connection what the session set up there.
struct SSHSession: Sendable {
    let commandLine: SSHCommandLine
    /// The remote Unix socket the worker connects to.
    let remoteSocket: String
    /// The forwarding, as `-R` takes it (`remote.sock:local-hub`).
    let forwarding: String
}

/// What the client knows about the hosts its ssh gateways went to: each host's private directory,
/// prepared once per process (several gateways starting at once wait for the same preparation).
final class SSHHosts: Sendable {
    static let shared = SSHHosts()

    private let directories = Mutex<[SSHTarget: Task<String, any Error>]>([:])
    /// Makes this process's remote socket names unique on a shared host.
    let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private let counter = Atomic<Int>(0)

    /// A remote socket name unique for this process.
    func nextSocketName() -> String {
        "\(token)-\(counter.wrappingAdd(1, ordering: .relaxed).newValue).sock"
    }

    /// The private directory on `target`'s host, made (or checked) on first use.
    ///
    /// - Throws: ``SSHError`` as the preparation script's ssh failed, or `remoteSetupFailed`.
    func privateDirectory(_ target: SSHTarget, _ runner: SSHCommandRunner) async throws -> String {
        let task = directories.withLock { directories in
            if let task = directories[target] { return task }
            let task = Task { try await Self.prepare(target, runner) }
            directories[target] = task
            return task
        }
        do {
            return try await task.value
        } catch {
            // A failure is not remembered: the next gateway tries again.
            directories.withLock { directories in
                if directories[target] == task { directories[target] = nil }
            }
            throw error
        }
    }

    /// The script that makes the private directory of the remote user: `$XDG_RUNTIME_DIR/execnet`
    /// when that is a directory of the user's, else `/tmp/execnet-UID`; mode 0700, owned by the
    /// user, not a symbolic link. Sockets older than a day (left by dead connections) are removed.
    static let preparationScript = """
        umask 077
        d=${XDG_RUNTIME_DIR:-}
        if [ -n "$d" ] && [ -d "$d" ] && [ -O "$d" ] && [ ! -L "$d" ]; then d="$d/execnet"; else d="/tmp/execnet-$(id -u)"; fi
        mkdir -p "$d" 2>/dev/null
        if [ -L "$d" ] || [ ! -d "$d" ] || [ ! -O "$d" ]; then
            echo "execnet: $d is not a directory of this user" >&2; exit 3
        fi
        chmod 700 "$d" || exit 3
        find "$d" -type s -name '*.sock' -mtime +1 -exec rm -f {} + 2>/dev/null
        printf '%s\\n' "$d"
        """

    private static func prepare(_ target: SSHTarget, _ runner: SSHCommandRunner) async throws -> String {
        let result = try await runner.run(script: preparationScript, input: [])
        let text = String(decoding: result.stderr, as: UTF8.self).trimmingTrailingNewlines()
        guard result.status == 0 else {
            let code = SSHError.classify(text)
            throw SSHError(code == .failed ? .remoteSetupFailed : code, destination: target.destination,
                           message: text.isEmpty ? "preparing the remote directory failed with status \(result.status)" : text)
        }
        let directory = String(decoding: result.stdout, as: UTF8.self).trimmingTrailingNewlines()
        // The path goes into an `-R` argument and a shell word: plain characters only.
        let plain = directory.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "/._-".utf8.contains(byte)
        }
        guard directory.hasPrefix("/"), plain, directory.utf8.count < 80 else {
            throw SSHError(.remoteSetupFailed, destination: target.destination,
                           message: "the remote private directory '\(directory)' is not a short plain absolute path")
        }
        return directory
    }
}

extension Gateway {
    /// The line a remote worker's wrapper writes on stderr when the worker died by a signal (ssh
    /// itself reports a remote signal only as status 255, like its own failures).
    static let sshSignalMarker = "execnet: the worker was killed by signal "

    /// Starts the worker over ssh and waits for its hello.
    ///
    /// - Throws: ``SSHError`` with ssh's text when ssh fails; as ``start(timeout:)`` otherwise.
    func startSSH(_ target: SSHTarget, timeout: Duration) async throws {
        if let python = spec["python"] {
            runtime.logger.debug("gateway \(id): python=\(python) is ignored (workers are Swift executables; worker=PATH picks one)")
        }
        let commandLine = try SSHCommandLine(target: target)
        let runner = SSHCommandRunner(commandLine: commandLine)
        let directory = try await SSHHosts.shared.privateDirectory(target, runner)
        let worker = try await remoteWorker(runner, target)
        let remoteSocket = directory + "/" + SSHHosts.shared.nextSocketName()
        var settings = WorkerEnvironment.Settings(
            endpoint: "ipc://" + remoteSocket, routingID: routingID, gatewayID: id, chdir: spec.chdir,
            nice: spec.nice.map(Int64.init))
        settings.sshSession = true
        var variables: [String] = []
        for (name, value) in spec.environment {
            if let refusal = WorkerEnvironment.refusal(forClientVariable: name) {
                throw ExecnetError(.invalidSpec, "env:\(name) is refused: \(refusal.reason)", gatewayID: id)
            }
            variables.append("\(name)=\(value)")
        }
        variables += settings.variables
        // Not `exec`: the shell reports a death by signal, which ssh would turn into status 255.
        let remoteCommand = "env " + variables.map(shellQuoted).joined(separator: " ") + " " + worker
            + "; s=$?; rm -f " + shellQuoted(remoteSocket)
            + "; if [ $s -gt 128 ] && [ $s -lt 193 ]; then echo \"\(Self.sshSignalMarker)$((s - 128))\" >&2; fi; exit $s"
        let hubSocket = String(runtime.endpoint.dropFirst("ipc://".count))
        let forwarding = remoteSocket + ":" + hubSocket
        let arguments = commandLine.arguments(
            extra: ["-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes", "-R", forwarding],
            remoteCommand: remoteCommand)
        state.withLock { $0.sshSession = SSHSession(commandLine: commandLine, remoteSocket: remoteSocket, forwarding: forwarding) }
        // ssh gets this process's environment (HOME, SSH_AUTH_SOCK, …); the worker's is built above.
        let launch = WorkerLaunch(gateway: self, executable: commandLine.executable,
                                  environment: WorkerProcess.currentEnvironment(), arguments: arguments, holdsStdin: true)
        try await awaitHello(timeout: timeout) { [runtime] in runtime.io.submit(.launch(launch)) }
    }

    /// The remote command that runs the worker, as a shell word: the worker's bundle installed in
    /// the remote per-user cache (copied once per host and content), or with `ssh_install=no` the
    /// worker's local path as is (a host that shares the file system or has the worker installed).
    private func remoteWorker(_ runner: SSHCommandRunner, _ target: SSHTarget) async throws -> String {
        let local = try WorkerProcess.resolveExecutable(spec: spec)
        var command = local
        if spec["ssh_install"] != .string("no") {
            do {
                // Made once per executable, on a thread of its own (ldd, patchelf and hashing block).
                let bundle = try await WorkerBundle.cached(workerExecutable: local)
                command = try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner)
            } catch let error as WorkerBundleError {
                throw Self.sshError(error, target, gatewayID: id)
            }
        }
        // `env` takes a word with '=' for a variable.
        guard !command.contains("=") else {
            throw ExecnetError(.invalidSpec, "the worker path \(command) contains '=', which ssh gateways cannot run", gatewayID: id)
        }
        return shellQuoted(command)
    }

    /// A bundle error as the gateway reports it: what the remote host said as an ``SSHError``, a
    /// local failure as ``ExecnetError`` `workerNotFound`.
    static func sshError(_ error: WorkerBundleError, _ target: SSHTarget, gatewayID: String) -> any Error {
        let code: SSHError.Code
        switch error {
        case .wrongArchitecture, .glibcTooOld, .noGlibc: code = .wrongArchitecture
        case .noSpace: code = .noSpace
        case .unsafeCache, .installFailed: code = .remoteSetupFailed
        case .unreadable, .libraryNotFound, .toolMissing:
            return ExecnetError(.workerNotFound, "\(error)", gatewayID: gatewayID, cause: error)
        }
        return SSHError(code, destination: target.destination, message: "\(error)", gatewayID: gatewayID)
    }

    /// How an ssh gateway's `ssh` ended, read for what it means (I/O thread): ssh's status 255 is
    /// its own failure or a lost connection (an ``SSHError`` with ssh's text); the wrapper's marker
    /// line is a remote death by signal; anything else is the remote worker's exit status.
    ///
    /// - Returns: The worker's exit, the cause for its channels, and the error for a start that
    ///   has not finished.
    func sshEnded(_ target: SSHTarget, _ exit: WorkerExit, cause: String?, stderr: [String])
        -> (WorkerExit, String?, SSHError?) {
        let destination = target.destination
        let session = state.withLock { state -> SSHSession? in
            defer { state.sshSession = nil }
            return state.sshSession
        }
        if let session { Self.undo(session) }
        if let cause { return (exit, cause, nil) }
        let text = stderr.filter { !$0.hasPrefix(Self.sshSignalMarker) }.joined(separator: "\n")
        let said = text.isEmpty ? "" : ": \(text)"
        switch exit {
        case .exited(255):
            var code = SSHError.classify(text)
            if code == .failed && isRunning { code = .connectionLost }
            let error = SSHError(code, destination: destination, message: text.isEmpty ? "ssh exited with status 255" : text,
                                 gatewayID: id)
            return (exit, "the ssh connection of gateway \(id) to \(destination) ended (\(code))\(said)", error)
        case .exited(let status):
            if let marker = stderr.last(where: { $0.hasPrefix(Self.sshSignalMarker) }),
                let signal = Int32(marker.dropFirst(Self.sshSignalMarker.count)), status == 128 + signal {
                let exit = WorkerExit.signaled(signal)
                return (exit, "worker of gateway \(id) on \(destination) \(exit)", nil)
            }
            return (exit, "worker of gateway \(id) on \(destination) \(exit)\(said)", nil)
        case .signaled:
            return (exit, "the ssh client of gateway \(id) (to \(destination)) was \(exit); its session is gone", nil)
        case .heartbeatLost:
            return (exit, nil, nil)
        }
    }

    private var isRunning: Bool {
        state.withLock { state in
            if case .starting = state.phase { return false }
            return true
        }
    }

    /// On a shared connection, a session's forwarding outlives the session: cancel it (in the
    /// background, best effort).
    private static func undo(_ session: SSHSession) {
        guard session.commandLine.controlPath != nil else { return }
        let arguments = session.commandLine.controlArguments(["-O", "cancel", "-R", session.forwarding])
        let executable = session.commandLine.executable
        OSThread(name: "execnet-ssh") {
            _ = try? runLocalCommand(executable: executable, arguments: arguments, input: [], outputLimit: 4096)
        }.detach()
    }
}
