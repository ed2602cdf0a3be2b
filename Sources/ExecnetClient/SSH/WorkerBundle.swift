// The self-contained worker bundle of ssh gateways (issue 14) and its installation into a remote
// per-user cache. The ssh gateway (Gateway+SSH) gives a RemoteCommandRunner over its connection;
// this file decides what is copied and how it is installed. Design: docs/ARCHITECTURE.md
// ("Zero-install bootstrap"), trust: docs/SECURITY.md ("The remote bundle cache").

#if canImport(Glibc)
import Glibc
#endif

import ExecnetCore
import Synchronization

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
    /// The scripts are POSIX `sh` (run them with `/bin/sh -c SCRIPT`, or `sh -c` through the
    /// user's login shell as OpenSSH does; they set `LC_ALL=C` and `umask 077` themselves) and
    /// need `HOME` (or an absolute `XDG_CACHE_HOME`) in their environment.
    func run(script: String, input: [UInt8]) async throws -> RemoteCommandResult

    /// Names the remote cache this runner reaches (for example `user@host:port`), or `nil`.
    ///
    /// Concurrent ``WorkerBundleInstaller/ensureInstalled(_:on:)`` calls in this process whose
    /// runners give the same non-nil key share one installation: the bundle is copied once. The
    /// default is `nil` (each call probes and, if needed, copies on its own; still atomic).
    var installKey: String? { get }
}

extension RemoteCommandRunner {
    package var installKey: String? { nil }
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
/// `worker=self`): the same path for each. ``make(workerExecutable:)`` asks this machine's `ldd`
/// which libraries the worker loads, keeps every one that is not part of glibc (libzmq and its
/// dependencies, libstdc++, libgcc_s, and a debug build's Swift runtime), and gives each file a
/// `RUNPATH` of `$ORIGIN` with `patchelf`, so that the remote loader finds them beside the worker.
package struct WorkerBundle: Sendable {
    /// One file of the bundle: its name in the bundle directory, its mode and its bytes.
    package struct File: Sendable, Equatable {
        /// The name in the bundle directory (the worker's ``WorkerBundle/workerName``, a library's soname).
        package var name: String
        /// The permission bits it is installed with (0o500 for the worker, 0o400 for a library).
        package var mode: UInt32
        /// The bytes, after `patchelf`.
        package var contents: [UInt8]
    }

    /// The files: the worker first (named ``workerName``), then the libraries, sorted by name.
    package var files: [File]
    /// The machine the worker is built for, spelled as `uname -m` spells it (`x86_64`, `aarch64`).
    package var architecture: String
    /// The newest glibc symbol version the worker or a bundled library needs (`2.34`), or `nil`.
    package var requiredGlibc: String?
    /// The dynamic loader the worker names (its ELF interpreter, `/lib64/ld-linux-x86-64.so.2`), or
    /// `nil` for a static executable.
    package var loader: String?
    /// The SHA-256 of the bundle (names, modes and contents of every file), in lowercase hex.
    package var contentHash: String

    /// The worker's name inside the bundle directory.
    package static let workerName = "execnet-worker"

    /// The sonames that belong to glibc itself: the remote host's own copies are used, never shipped.
    package static func isGlibcLibrary(_ soname: String) -> Bool {
        let exact: Set<String> = [
            "libc.so.6", "libm.so.6", "libmvec.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libresolv.so.2",
            "libutil.so.1", "libanl.so.1", "libBrokenLocale.so.1", "libnsl.so.1", "libthread_db.so.1",
            "libc_malloc_debug.so.0", "libmemusage.so", "libpcprofile.so",
        ]
        return exact.contains(soname) || soname.hasPrefix("ld-linux") || soname.hasPrefix("ld64.so")
            || soname.hasPrefix("libnss_") || soname == "linux-vdso.so.1" || soname == "linux-gate.so.1"
    }

    /// The bundle as it travels: every file at an offset that is a multiple of 512, zero-padded,
    /// so that the remote `dd` cuts it apart in whole blocks.
    package var pack: (bytes: [UInt8], offsets: [Int]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(files.reduce(0) { $0 + $1.contents.count + 511 })
        var offsets: [Int] = []
        for file in files {
            offsets.append(bytes.count)
            bytes += file.contents
            let padding = (512 - bytes.count % 512) % 512
            bytes += repeatElement(0, count: padding)
        }
        return (bytes, offsets)
    }

    /// Makes a bundle from files already gathered (names, modes, contents): parses each as ELF and
    /// computes the hash. ``make(workerExecutable:)`` gathers them from a worker executable.
    ///
    /// - Throws: ``WorkerBundleError/unreadable(path:reason:)`` if a file is not a 64-bit ELF file,
    ///   or a name is not a plain file name.
    package init(files: [File]) throws {
        precondition(!files.isEmpty)
        let ordered = [files[0]] + files.dropFirst().sorted { $0.name < $1.name }
        var newest: [Int]? = nil
        var hash = SHA256()
        var worker: ELFFile? = nil
        for file in ordered {
            guard Self.isPlainName(file.name) else { throw WorkerBundleError.unreadable(path: file.name, reason: "not a plain file name") }
            let elf: ELFFile
            do { elf = try ELFFile(file.contents) } catch { throw WorkerBundleError.unreadable(path: file.name, reason: "\(error)") }
            if worker == nil { worker = elf }
            for version in elf.glibcVersions where newest.map({ ELFFile.isOlder($0, than: version) }) ?? true { newest = version }
            hash.update(file.name)
            hash.update([0])
            hash.update(String(file.mode, radix: 8))
            hash.update([0])
            hash.update(String(file.contents.count))
            hash.update([0])
            hash.update(file.contents)
        }
        self.files = ordered
        architecture = worker!.architecture
        loader = worker!.interpreter
        requiredGlibc = newest.map { $0.map(String.init).joined(separator: ".") }
        contentHash = SHA256.hexString(hash.finalize())
        if let loader, !loader.hasPrefix("/") || loader.contains("'") || loader.contains("\n") {
            throw WorkerBundleError.unreadable(path: files[0].name, reason: "odd ELF interpreter \(loader)")
        }
    }

    /// Letters, digits, `.`, `_`, `+`, `-`; not starting with `.`; at most 255 bytes.
    static func isPlainName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count <= 255 && bytes[0] != UInt8(ascii: ".")
            && bytes.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            }
    }

    /// Makes the bundle of a local worker executable.
    ///
    /// Runs this machine's `ldd` on it (the loader's own search: its `RUNPATH`, the loader cache)
    /// and `patchelf` on copies in a private temporary directory. Blocks the calling thread for a
    /// while (reading, patching and hashing some megabytes; tens of megabytes for a debug build):
    /// call it from a thread that may block, or use ``cached(workerExecutable:)``.
    ///
    /// - Throws: ``WorkerBundleError``: `unreadable`, `libraryNotFound`, `toolMissing`.
    package static func make(workerExecutable: String) throws -> WorkerBundle {
        let workerBytes = try readWholeFile(workerExecutable)
        do { _ = try ELFFile(workerBytes) } catch {
            throw WorkerBundleError.unreadable(path: workerExecutable, reason: "\(error)")
        }
        let libraries = try loadedLibraries(of: workerExecutable)
        var files = [File(name: workerName, mode: 0o500, contents: workerBytes)]
        for library in libraries {
            files.append(File(name: library.soname, mode: 0o400, contents: try readWholeFile(library.path)))
        }
        if !libraries.isEmpty { files = try patched(files) }
        return try WorkerBundle(files: files)
    }

    private static let madeBundles = Mutex<[String: WorkerBundle]>([:])

    /// ``make(workerExecutable:)`` once per executable file (its device, inode, size and mtime),
    /// on a thread of its own: later calls for an unchanged file return the same bundle at once.
    package static func cached(workerExecutable: String) async throws -> WorkerBundle {
        var info = stat()
        guard stat(workerExecutable, &info) == 0 else {
            throw WorkerBundleError.unreadable(path: workerExecutable, reason: String(cString: strerror(errno)))
        }
        let key = "\(workerExecutable)\u{0}\(info.st_dev)\u{0}\(info.st_ino)\u{0}\(info.st_size)\u{0}\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        if let bundle = madeBundles.withLock({ $0[key] }) { return bundle }
        let bundle: WorkerBundle = try await withCheckedThrowingContinuation { continuation in
            OSThread(name: "execnet-bundle") {
                continuation.resume(with: Result { try make(workerExecutable: workerExecutable) })
            }.detach()
        }
        madeBundles.withLock { $0[key] = bundle }
        return bundle
    }

    /// The non-glibc libraries `ldd` lists for `executable`: (soname, resolved path).
    static func loadedLibraries(of executable: String) throws -> [(soname: String, path: String)] {
        let result: RemoteCommandResult
        do {
            result = try LocalCommand.run(["ldd", executable])
        } catch let failure as LocalCommand.StartFailure {
            throw WorkerBundleError.toolMissing(name: "ldd", reason: failure.description)
        }
        let output = String(decoding: result.stdout, as: UTF8.self)
        let errors = String(decoding: result.stderr, as: UTF8.self)
        if output.contains("not a dynamic executable") || errors.contains("not a dynamic executable") { return [] }
        guard result.status == 0 else {
            throw WorkerBundleError.unreadable(path: executable, reason: "ldd failed: \(errors)\(output)")
        }
        var libraries: [(soname: String, path: String)] = []
        var seen: Set<String> = []
        for line in output.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard let arrow = trimmed.firstRange(of: " => ") else { continue }  // the vdso, the loader
            let soname = String(trimmed[..<arrow.lowerBound])
            var target = trimmed[arrow.upperBound...]
            if target.hasPrefix("not found") { throw WorkerBundleError.libraryNotFound(name: soname) }
            if let address = target.firstRange(of: " (0x") { target = target[..<address.lowerBound] }
            guard !isGlibcLibrary(soname), !seen.contains(soname), target.hasPrefix("/") else { continue }
            seen.insert(soname)
            libraries.append((soname, String(target)))
        }
        return libraries
    }

    /// The files with `RUNPATH` `$ORIGIN`, through `patchelf` on copies in a private temporary directory.
    static func patched(_ files: [File]) throws -> [File] {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        var template = Array("\(base)/execnet-bundle-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw WorkerBundleError.unreadable(path: base, reason: "mkdtemp: \(String(cString: strerror(errno)))")
        }
        let directory = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer {
            for file in files { unlink("\(directory)/\(file.name)") }
            rmdir(directory)
        }
        var result: [File] = []
        for file in files {
            let path = "\(directory)/\(file.name)"
            try writeWholeFile(path, file.contents)
            let outcome: RemoteCommandResult
            do {
                outcome = try LocalCommand.run(["patchelf", "--set-rpath", "$ORIGIN", path])
            } catch let failure as LocalCommand.StartFailure {
                throw WorkerBundleError.toolMissing(name: "patchelf", reason: "\(failure) (Debian: apt-get install patchelf)")
            }
            guard outcome.status == 0 else {
                throw WorkerBundleError.unreadable(path: file.name,
                                                   reason: "patchelf failed: \(String(decoding: outcome.stderr, as: UTF8.self))")
            }
            var patchedFile = file
            patchedFile.contents = try readWholeFile(path)
            result.append(patchedFile)
        }
        return result
    }

    static func readWholeFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WorkerBundleError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw WorkerBundleError.unreadable(path: path, reason: "not a regular file")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw WorkerBundleError.unreadable(path: path, reason: count == 0 ? "changed while read" : String(cString: strerror(errno)))
            }
            offset += count
        }
        return bytes
    }

    static func writeWholeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WorkerBundleError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw WorkerBundleError.unreadable(path: path, reason: String(cString: strerror(errno))) }
            offset += count
        }
    }
}

/// Installs worker bundles into a remote host's per-user cache.
///
/// Two scripts, each one `RemoteCommandRunner.run`: a probe (no input) reports the machine
/// (`uname -m`), the glibc version (`getconf GNU_LIBC_VERSION`, else the loader's `--version`),
/// whether the loader exists, whether the cache directories are private, and whether the bundle is
/// there; only if it is not, the install script receives the whole bundle on its stdin in one
/// stream, cuts it apart with `dd` in a temporary directory of the cache, checks every size, checks
/// with the remote loader (`ld.so --list`) that every library resolves, writes the `.complete`
/// marker last and renames the directory into place. The remote needs a POSIX `sh` and `uname`,
/// `id`, `ls`, `mkdir`, `cat`, `dd`, `wc`, `chmod`, `mv`, `rm` (`getconf` if present).
package enum WorkerBundleInstaller {
    /// Ensures the bundle is in the remote per-user cache (copied once, atomically, checked for
    /// arch/glibc); returns the remote command that runs the worker (its absolute path).
    ///
    /// The path is `${XDG_CACHE_HOME:-$HOME/.cache}/swift-execnet/bundles/<hash>/execnet-worker`
    /// as the remote expands it (quote it for a shell: it may contain spaces).
    ///
    /// - Throws: ``WorkerBundleError``, or what the runner throws.
    package static func ensureInstalled(_ bundle: WorkerBundle, on runner: any RemoteCommandRunner) async throws -> String {
        guard let key = runner.installKey.map({ "\($0)\u{0}\(bundle.contentHash)" }) else {
            return try await install(bundle, on: runner)
        }
        let task = inFlight.withLock { table in
            if let running = table[key] { return running }
            let started = Task { try await install(bundle, on: runner) }
            table[key] = started
            return started
        }
        defer { inFlight.withLock { table in if table[key] == task { table[key] = nil } } }
        return try await task.value
    }

    private static let inFlight = Mutex<[String: Task<String, any Error>]>([:])

    /// One probe and, if needed, one copy.
    static func install(_ bundle: WorkerBundle, on runner: any RemoteCommandRunner) async throws -> String {
        let probe = try await runner.run(script: probeScript(bundle), input: [])
        let report = try check(probe, bundle)
        if report["installed"] == "1", let path = report["path"] { return path }
        let pack = bundle.pack
        let installed = try await runner.run(script: installScript(bundle, offsets: pack.offsets, total: pack.bytes.count),
                                             input: pack.bytes)
        let done = try check(installed, bundle, glibc: report["glibc"])
        guard done["installed"] == "1", let path = done["path"] else {
            throw WorkerBundleError.installFailed(status: installed.status, remoteText: text(installed))
        }
        return path
    }

    /// The `key=value` lines of a script's stdout, checked against the bundle.
    static func check(_ result: RemoteCommandResult, _ bundle: WorkerBundle, glibc probed: String? = nil) throws -> [String: String] {
        var report: [String: String] = [:]
        for line in String(decoding: result.stdout, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            report[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        let remoteText = text(result)
        if let unsafe = report["unsafe"] {
            throw WorkerBundleError.unsafeCache(path: String(unsafe.prefix { $0 != "\t" }), remoteText: unsafe)
        }
        if remoteText.contains("No space left on device") || remoteText.contains("Disk quota exceeded") {
            throw WorkerBundleError.noSpace(remoteText: remoteText)
        }
        if let arch = report["arch"], arch != bundle.architecture {
            throw WorkerBundleError.wrongArchitecture(remote: arch, local: bundle.architecture)
        }
        if let loader = bundle.loader, report["loader"] == "0" {
            throw WorkerBundleError.noGlibc(loader: loader, remoteText: remoteText)
        }
        let remoteGlibc = glibcVersion(report["glibc"] ?? probed ?? "")
        if let required = bundle.requiredGlibc, let remote = remoteGlibc,
            let needed = ELFFile.versionNumbers(required), let have = ELFFile.versionNumbers(remote),
            ELFFile.isOlder(have, than: needed) {
            throw WorkerBundleError.glibcTooOld(remote: remote, required: required)
        }
        if report["loadcheck"] == "failed" {
            if remoteText.contains("GLIBC_"), let required = bundle.requiredGlibc {
                throw WorkerBundleError.glibcTooOld(remote: remoteGlibc ?? "unknown", required: required)
            }
            throw WorkerBundleError.installFailed(status: result.status, remoteText: remoteText)
        }
        guard result.status == 0, report["arch"] != nil else {
            throw WorkerBundleError.installFailed(status: result.status, remoteText: remoteText)
        }
        return report
    }

    /// The version in `glibc 2.36` (getconf) or `ld.so (... GLIBC 2.36-9) stable release version 2.36.` (the loader).
    static func glibcVersion(_ text: String) -> String? {
        var candidate: String? = nil
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "-" }) {
            var token = Substring(word)
            while token.hasSuffix(".") { token = token.dropLast() }
            if token.contains("."), ELFFile.versionNumbers(String(token)) != nil { candidate = String(token) }
        }
        return candidate
    }

    static func text(_ result: RemoteCommandResult) -> String {
        (String(decoding: result.stderr, as: UTF8.self) + String(decoding: result.stdout, as: UTF8.self))
    }

    static func quoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// What both scripts start with: settings, the cache paths and the directory check.
    static func prelude(_ bundle: WorkerBundle) -> String {
        """
        set -f
        LC_ALL=C; export LC_ALL
        umask 077
        hash=\(bundle.contentHash)
        loader=\(quoted(bundle.loader ?? ""))
        case "${XDG_CACHE_HOME:-}" in
        /*) base=$XDG_CACHE_HOME ;;
        *) if [ -z "${HOME:-}" ]; then echo 'error=HOME is not set' >&2; exit 3; fi; base=$HOME/.cache ;;
        esac
        root=$base/swift-execnet/bundles
        dir=$root/$hash
        me=$(id -u) || exit 3
        echo "arch=$(uname -m)"
        private() {
          [ -e "$1" ] || [ -L "$1" ] || return 0
          [ -d "$1" ] || { printf 'unsafe=%s\\tnot a directory\\n' "$1"; exit 4; }
          set -- "$1" $(ls -ldnL -- "$1")
          [ "$4" = "$me" ] || { printf 'unsafe=%s\\towned by uid %s, not %s\\n' "$1" "$4" "$me"; exit 4; }
          case $2 in ?????w*|????????w*) printf 'unsafe=%s\\tmode %s\\n' "$1" "$2"; exit 4 ;; esac
        }

        """
    }

    static func probeScript(_ bundle: WorkerBundle) -> String {
        prelude(bundle) + """
        v=$(getconf GNU_LIBC_VERSION 2>/dev/null) || v=
        if [ -z "$v" ] && [ -n "$loader" ] && [ -x "$loader" ]; then
          v=$("$loader" --version 2>/dev/null) || v=
          v=${v%%"
        "*}
        fi
        echo "glibc=$v"
        if [ -z "$loader" ] || [ -e "$loader" ]; then echo loader=1; else echo loader=0; fi
        private "$base"; private "$base/swift-execnet"; private "$root"
        if [ -f "$dir/.complete" ]; then echo installed=1; fi
        echo "path=$dir/\(WorkerBundle.workerName)"

        """
    }

    static func installScript(_ bundle: WorkerBundle, offsets: [Int], total: Int) -> String {
        let nonce = UInt64.random(in: 0...UInt64.max)
        var script = prelude(bundle) + """
        if [ -n "$loader" ] && [ ! -e "$loader" ]; then echo loader=0; exit 5; fi
        mkdir -p "$root" || exit 5
        private "$base"; private "$base/swift-execnet"; private "$root"
        if [ -f "$dir/.complete" ]; then cat >/dev/null; echo installed=1; echo "path=$dir/\(WorkerBundle.workerName)"; exit 0; fi
        name=.tmp-\(String(nonce, radix: 16))-$$
        tmp=$root/$name
        trap 'rm -rf "$tmp"' EXIT
        trap 'exit 1' HUP INT TERM
        mkdir "$tmp" || exit 5
        cat >"$tmp/.pack" || exit 6
        [ "$(($(wc -c <"$tmp/.pack")))" -eq \(total) ] || { echo "error=short copy" >&2; exit 6; }
        part() {
          full=$(($3 / 512)); rest=$(($3 % 512))
          : >"$tmp/$1" || exit 6
          if [ "$full" -gt 0 ]; then
            e=$(dd if="$tmp/.pack" of="$tmp/$1" bs=512 skip=$(($2 / 512)) count=$full 2>&1) || { echo "$e" >&2; exit 6; }
          fi
          if [ "$rest" -gt 0 ]; then
            e=$(dd if="$tmp/.pack" bs=1 skip=$(($2 + full * 512)) count=$rest 2>&1 >>"$tmp/$1") || { echo "$e" >&2; exit 6; }
          fi
          [ "$(($(wc -c <"$tmp/$1")))" -eq "$3" ] || { echo "error=short file $1" >&2; exit 6; }
          chmod "$4" "$tmp/$1" || exit 6
        }

        """
        for (file, offset) in zip(bundle.files, offsets) {
            script += "part \(file.name) \(offset) \(file.contents.count) \(String(file.mode, radix: 8))\n"
        }
        script += """
        rm -f "$tmp/.pack"
        if [ -n "$loader" ]; then
          out=$("$loader" --list "$tmp/\(WorkerBundle.workerName)" 2>&1); status=$?
          case "$status:$out" in
          0:*"not found"*|[1-9]*) echo loadcheck=failed; printf '%s\\n' "$out" >&2; exit 8 ;;
          esac
        fi
        echo "$hash" >"$tmp/.complete" || exit 6
        if [ -d "$dir" ] && [ ! -f "$dir/.complete" ]; then rm -rf "$dir"; fi
        mv "$tmp" "$dir" 2>/dev/null
        if [ -d "$dir/$name" ]; then rm -rf "$dir/$name"; fi
        [ -f "$dir/.complete" ] || { echo "error=the bundle directory could not be renamed into place" >&2; exit 9; }
        echo installed=1
        echo "path=$dir/\(WorkerBundle.workerName)"

        """
        return script
    }
}
