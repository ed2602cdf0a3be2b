// The tasks every stock worker offers: echo (send back each item), exec (run a command, stream
// its output, then its exit status) and info (who and where the worker is).

import CExecnetShims
import ExecnetCore
#if canImport(Glibc)
import Glibc
#endif

extension TaskRegistry {
    /// A registry with the built-in tasks `echo`, `exec` and `info`.
    public static var builtins: TaskRegistry {
        var registry = TaskRegistry()
        registry.registerBuiltins()
        return registry
    }

    /// Adds the built-in tasks `echo`, `exec` and `info`.
    ///
    /// - `echo`: sends back every item it receives until the channel ends (on the I/O thread:
    ///   it only moves messages).
    /// - `exec`: runs `argv` (a list of strings; keyword `env` a dict of strings, `cwd` a string),
    ///   sends `("stdout", bytes)` and `("stderr", bytes)` chunks as they come, then
    ///   `("exit", code)` or `("signal", number)`. Closing the channel kills the command; the
    ///   command and what it starts die with the worker. Refused in workers of a host agent
    ///   started without `--allow-exec`.
    /// - `info`: sends one dict: `pid`, `cwd`, `hostname`, `executable`, `platform`.
    public mutating func registerBuiltins() {
        registerOnIOThread("echo") { context in
            for try await item in context.channel {
                try await context.channel.send(item)
            }
        }
        register("info") { context in
            var info = ControlPayload()
            for (key, value) in ProcessIdentity.current().fields { info[key] = value }
            try await context.channel.send(.dict(info.fields))
        }
        registerThread("exec", runCommandTask)
    }
}

/// Whether the `exec` task refuses to run: a host agent started without `--allow-exec` sets
/// `EXECNET_EXEC_DISABLED=1` for its workers (a client cannot set or unset `EXECNET_*` names).
private let execDisabled = getenv("EXECNET_EXEC_DISABLED").map { String(cString: $0) != "0" } ?? false

/// The `exec` task: see ``TaskRegistry/registerBuiltins()``.
@available(*, noasync)
private func runCommandTask(_ context: TaskContext) throws {
    if execDisabled {
        throw ExecnetError(.invalidState, "exec is disabled in this worker: its host agent runs without --allow-exec")
    }
    guard case .list(let rawArgv)? = context.arguments.first ?? context["argv"], !rawArgv.isEmpty else {
        throw ExecnetError(.invalidState, "exec needs argv: a non-empty list of strings")
    }
    let argv = try rawArgv.map { item -> String in
        guard case .string(let text) = item else { throw ExecnetError(.invalidState, "exec argv items must be strings") }
        return text
    }
    var environment = WorkerProcess.currentEnvironment()
    if case .dict(let extra)? = context["env"] {
        for (key, value) in extra {
            guard case .string(let name) = key, case .string(let text) = value else { continue }
            environment.removeAll { $0.hasPrefix(name + "=") }
            environment.append("\(name)=\(text)")
        }
    }
    var executable = argv[0]
    if !executable.contains("/") {
        let searchPath = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") where access("\(directory)/\(executable)", X_OK) == 0 {
            executable = "\(directory)/\(executable)"
            break
        }
    }
    var cwd: String?
    if case .string(let directory)? = context["cwd"] { cwd = directory }
    // The command stays in the worker's process group, which its gateway kills when the worker
    // ends, and it gets SIGKILL if this thread (so the worker) dies first.
    let child = try WorkerProcess.spawn(executable: executable, arguments: Array(argv.dropFirst()),
                                        environment: environment, cwd: cwd, newProcessGroup: false,
                                        parentDeathSignal: SIGKILL)
    defer {
        close(child.pidfd)
    }
    var open: [(Int32, String)] = [(child.stdout, "stdout"), (child.stderr, "stderr")]
    var buffer = [UInt8](repeating: 0, count: 65536)
    // Poll the pipes with a short timeout so a closed channel is noticed and kills the command.
    while !open.isEmpty {
        if context.channel.isClosed {
            _ = cexecnet_pidfd_send_signal(child.pidfd, SIGKILL)
            for (fd, _) in open { close(fd) }
            _ = waitForExit(child.pidfd)
            return
        }
        var fds = open.map { pollfd(fd: $0.0, events: Int16(POLLIN), revents: 0) }
        let ready = poll(&fds, nfds_t(fds.count), 100)
        if ready <= 0 { continue }
        var finished: [Int32] = []
        for (index, pfd) in fds.enumerated() where pfd.revents != 0 {
            let count = buffer.withUnsafeMutableBytes { read(pfd.fd, $0.baseAddress, $0.count) }
            if count > 0 {
                try context.channel.sendBlocking(.tuple([.string(open[index].1), .bytes(Array(buffer[0..<count]))]))
            } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                finished.append(pfd.fd)
            }
        }
        for fd in finished { close(fd) }
        open.removeAll { finished.contains($0.0) }
    }
    switch waitForExit(child.pidfd) {
    case .exited(let code): try context.channel.sendBlocking(.tuple(["exit", .int(Int64(code))]))
    case .signaled(let signal): try context.channel.sendBlocking(.tuple(["signal", .int(Int64(signal))]))
    case .heartbeatLost: break
    }
}

@available(*, noasync)
private func waitForExit(_ pidfd: Int32) -> WorkerExit {
    while true {
        if let exit = WorkerProcess.reap(pidfd: pidfd) { return exit }
        var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, 1000)
    }
}
