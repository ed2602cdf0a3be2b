// The self-contained worker bundle of ssh gateways (issue 14) and its installation into a remote
// per-user cache. The ssh gateway (Gateway+SSH) gives a RemoteCommandRunner over its connection;
// this file decides what is copied and how it is installed. Design: docs/ARCHITECTURE.md
// ("Zero-install bootstrap"), trust: docs/SECURITY.md ("The remote bundle cache").

#if canImport(Glibc)
import Glibc
#endif

import ExecnetCore

/// What a remote shell script returned: its exit status and everything it wrote.
package struct RemoteCommandResult: Sendable {
    /// The exit status of the remote script (as the transport reports it; ssh gives 255 for its own failures).
    package var status: Int32
    /// Everything the script wrote to its standard output.
    package var stdout: [UInt8]
    /// Everything the script (or the transport) wrote to its standard error.
    package var stderr: [UInt8]

    package init(status: Int32, stdout: [UInt8], stderr: [UInt8]) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs shell scripts on one remote host: the only thing the bundle installer needs of a transport.
///
/// The ssh gateway implements it with the OpenSSH client (`ssh HOST /bin/sh -c SCRIPT`); the tests
/// implement it with a local `/bin/sh` and with `chroot DIR /bin/sh`.
package protocol RemoteCommandRunner: Sendable {
    /// Runs a POSIX shell script on the remote host with `input` on its stdin.
    ///
    /// Returns when the script exited and its output was read to the end. A nonzero status is a
    /// result, not an error; throw only when the script could not be run at all.
    func run(script: String, input: [UInt8]) async throws -> RemoteCommandResult
}

/// Why a worker bundle could not be made or installed.
package enum WorkerBundleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The local worker executable, or a library it loads, could not be read or is not an ELF file
    /// of this machine.
    case unreadable(path: String, reason: String)
    /// A library the worker loads could not be found on this machine (`ldd` said "not found").
    case libraryNotFound(name: String)
    /// A tool needed at bundle time (`patchelf`) is missing on this machine.
    case toolMissing(name: String, reason: String)
    /// The remote host's machine (`uname -m`) is not the bundle's.
    case wrongArchitecture(remote: String, local: String)
    /// The remote host's glibc is older than the newest `GLIBC_x.y` symbol version the bundle needs.
    case glibcTooOld(remote: String, required: String)
    /// The remote host has no glibc dynamic loader at the path the worker names (for example a
    /// musl system).
    case noGlibc(loader: String, remoteText: String)
    /// The remote cache directory (or one of its parents the installer creates) is not private to
    /// the user: owned by someone else, or writable by group or others.
    case unsafeCache(path: String, remoteText: String)
    /// The remote ran out of space while the bundle was copied (the remote's own text).
    case noSpace(remoteText: String)
    /// The remote installation failed for another reason (the exit status and the remote's text).
    case installFailed(status: Int32, remoteText: String)

    package var description: String {
        switch self {
        case .unreadable(let path, let reason): "worker bundle: cannot read \(path): \(reason)"
        case .libraryNotFound(let name): "worker bundle: the worker loads \(name), which is not found on this machine"
        case .toolMissing(let name, let reason): "worker bundle: \(name) is needed to make a bundle: \(reason)"
        case .wrongArchitecture(let remote, let local):
            "worker bundle: the remote host is \(remote), the worker is built for \(local)"
        case .glibcTooOld(let remote, let required):
            "worker bundle: the remote host has glibc \(remote), the worker needs glibc \(required) or newer"
        case .noGlibc(let loader, let text): "worker bundle: the remote host has no glibc loader \(loader): \(text)"
        case .unsafeCache(let path, let text):
            "worker bundle: the remote cache \(path) is not private to the user (owned by someone else or group/world-writable): \(text)"
        case .noSpace(let text): "worker bundle: no space left on the remote host: \(text)"
        case .installFailed(let status, let text): "worker bundle: remote installation failed (status \(status)): \(text)"
        }
    }
}

/// A worker executable with every non-glibc shared library it loads, ready to be copied to a host
/// that has only a shell and a glibc.
///
/// Made on the client from a local worker executable (the stock worker, `worker=PATH` or
/// `worker=self`): the same path for each.
package struct WorkerBundle: Sendable {
    /// One file of the bundle: its name in the bundle directory, its mode and its bytes.
    package struct File: Sendable, Equatable {
        package var name: String
        package var mode: UInt32
        package var contents: [UInt8]
    }

    /// The files: the worker first (named ``workerName``), then the libraries, sorted by name.
    package var files: [File]
    /// The machine the worker is built for, spelled as `uname -m` spells it (`x86_64`, `aarch64`).
    package var architecture: String
    /// The newest glibc symbol version the worker or a bundled library needs (`2.34`), or `nil`.
    package var requiredGlibc: String?
    /// The dynamic loader the worker names (its ELF interpreter, `/lib64/ld-linux-x86-64.so.2`).
    package var loader: String
    /// The SHA-256 of the bundle (names, modes and contents of every file), in lowercase hex.
    package var contentHash: String

    /// The worker's name inside the bundle directory.
    package static let workerName = "execnet-worker"

    /// Makes the bundle of a local worker executable.
    ///
    /// - Throws: ``WorkerBundleError``.
    package static func make(workerExecutable: String) throws -> WorkerBundle {
        throw WorkerBundleError.toolMissing(name: "WorkerBundle.make", reason: "not implemented yet")
    }
}

/// Installs worker bundles into a remote host's per-user cache.
package enum WorkerBundleInstaller {
    /// Ensures the bundle is in the remote per-user cache (copied once, atomically, checked for
    /// arch/glibc); returns the remote command that runs the worker (its absolute path).
    ///
    /// - Throws: ``WorkerBundleError``, or what the runner throws.
    package static func ensureInstalled(_ bundle: WorkerBundle, on runner: any RemoteCommandRunner) async throws -> String {
        throw WorkerBundleError.installFailed(status: -1, remoteText: "not implemented yet")
    }
}
