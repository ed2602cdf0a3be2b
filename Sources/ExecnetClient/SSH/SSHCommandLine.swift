// The OpenSSH client's command line for an ssh gateway, the same for the gateway's session and for
// the short scripts run before it (SSHCommandRunner): batch mode always (never a prompt), the spec's
// configuration file, connection sharing (ControlMaster) unless the spec says `ssh_reuse=no`, and
// keep-alives so that a dead connection is noticed. The spec's own ssh options come first, so they
// win over ours (ssh keeps the first value of each option), except BatchMode, which is first of all.

import ExecnetCore
#if canImport(Glibc)
import Glibc
#endif

/// Builds `ssh` command lines for an ``SSHTarget``.
struct SSHCommandLine: Sendable {
    /// Seconds between keep-alives on an idle connection (`ServerAliveInterval`).
    static let keepAliveInterval = 5
    /// Keep-alives without an answer before ssh gives the connection up (`ServerAliveCountMax`).
    static let keepAliveCount = 3

    let target: SSHTarget
    /// The ssh executable.
    let executable: String
    /// The control socket of the shared connection, when the target shares one.
    let controlPath: String?

    /// The command line for `target`.
    ///
    /// - Throws: ``ExecnetError`` `workerNotFound` if no `ssh` is on `PATH`, `transport` if the
    ///   private directory for the control socket cannot be made.
    init(target: SSHTarget) throws {
        self.target = target
        self.executable = try Self.findSSH()
        if target.reuse != nil {
            // %C is a hash of the local host, remote host, port, user and jump host: one socket
            // per connection, in the private directory of this user's execnet clients.
            controlPath = try ClientRuntime.preparedBaseDirectory() + "/ssh-%C"
        } else {
            controlPath = nil
        }
    }

    /// The arguments (after the program name) that run `remoteCommand` on the target.
    ///
    /// - Parameters:
    ///   - extra: Options of this session (forwarding), before the destination.
    ///   - remoteCommand: The command line for the remote user's shell.
    func arguments(extra: [String] = [], remoteCommand: String) -> [String] {
        var arguments = ["-o", "BatchMode=yes"]
        // The spec's options (all but the destination) win over ours.
        arguments += target.arguments.dropLast()
        if let configFile = target.configFile { arguments += ["-F", configFile] }
        if let controlPath, let reuse = target.reuse {
            arguments += ["-o", "ControlMaster=auto", "-o", "ControlPath=\(controlPath)",
                          "-o", "ControlPersist=\(reuse.components.seconds)"]
        }
        arguments += ["-o", "ServerAliveInterval=\(Self.keepAliveInterval)",
                      "-o", "ServerAliveCountMax=\(Self.keepAliveCount)", "-T", "-x"]
        arguments += extra
        arguments += ["--", target.destination, remoteCommand]
        return arguments
    }

    /// The arguments of a control command to the shared connection (`-O cancel -R …`).
    func controlArguments(_ extra: [String]) -> [String] {
        var arguments = ["-o", "BatchMode=yes"]
        arguments += target.arguments.dropLast()
        if let configFile = target.configFile { arguments += ["-F", configFile] }
        if let controlPath { arguments += ["-o", "ControlPath=\(controlPath)"] }
        return arguments + extra + ["--", target.destination]
    }

    /// The ssh client: `$EXECNET_SSH` if set, else `ssh` on `PATH`.
    private static func findSSH() throws -> String {
        if let explicit = getenv("EXECNET_SSH").map({ String(cString: $0) }), !explicit.isEmpty {
            guard access(explicit, X_OK) == 0 else {
                throw ExecnetError(.workerNotFound, "EXECNET_SSH names \(explicit), which is not an executable")
            }
            return explicit
        }
        let searchPath = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let path = String(directory) + "/ssh"
            if access(path, X_OK) == 0 { return path }
        }
        throw ExecnetError(.workerNotFound, "no ssh client found on PATH (\(searchPath)); install OpenSSH's client")
    }
}

/// `text` quoted for a POSIX shell: in single quotes, each `'` written as `'\''`.
func shellQuoted(_ text: String) -> String {
    "'" + text.replacing("'", with: "'\\''") + "'"
}
