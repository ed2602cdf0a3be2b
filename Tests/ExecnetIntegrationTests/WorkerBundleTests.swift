// The ssh gateways' worker bundle and its installer (issue 14), with real shells: a local
// `/bin/sh`, and `chroot` into a minimal root that has a shell, glibc, the documented POSIX
// utilities and nothing else (no libzmq, no Swift runtime, no libstdc++) — the zero-install
// claim. Every tool these tests need (patchelf, chroot, unshare, mount) is required: a missing
// one fails the test.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs scripts with a real `/bin/sh`, here or inside `chroot ROOT`, and counts what it sends.
final class ShellRunner: RemoteCommandRunner {
    let command: [String]
    let environment: [String]
    let installKey: String?
    let sent = Mutex<(runs: Int, bytes: Int)>((0, 0))

    /// `/bin/sh` on this machine with `environment`.
    init(environment: [String], installKey: String? = nil) {
        command = ["/bin/sh", "-c"]
        self.environment = environment
        self.installKey = installKey
    }

    /// `/bin/sh` inside `chroot root`.
    init(chroot root: String, environment: [String], installKey: String? = nil) {
        command = ["chroot", root, "/bin/sh", "-c"]
        self.environment = environment
        self.installKey = installKey
    }

    func run(script: String, input: [UInt8]) async throws -> RemoteCommandResult {
        sent.withLock { $0.runs += 1; $0.bytes += input.count }
        return try await LocalCommand.runDetached(command + [script], input: input, environment: environment)
    }

    var bytesSent: Int { sent.withLock { $0.bytes } }
}

/// A private temporary directory, removed (after a check that nothing is mounted below it) at the end.
struct ScratchDirectory: ~Copyable {
    let path: String

    init() throws {
        var template = Array("/tmp/execnet-bundle-test-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw ExecnetError(.transport, "mkdtemp failed")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit {
        let mounts = (try? WorkerBundle.readWholeFile("/proc/self/mounts")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard !mounts.contains(" \(path)") else { return }  // never rm -rf through a mount
        _ = try? LocalCommand.run(["rm", "-rf", path])
    }
}

/// Runs a host command (this machine's tools) and requires it to succeed.
@discardableResult
func host(_ arguments: [String], input: [UInt8] = []) async throws -> String {
    let result = try await LocalCommand.runDetached(arguments, input: input)
    let output = String(decoding: result.stdout, as: UTF8.self)
    guard result.status == 0 else {
        throw ExecnetError(.transport, "\(arguments.joined(separator: " ")) failed (\(result.status)): "
                           + String(decoding: result.stderr, as: UTF8.self) + output)
    }
    return output
}

/// The bundle of the debug build's stock worker, made once for all tests.
func stockWorkerBundle() async throws -> WorkerBundle {
    try await WorkerBundle.cached(workerExecutable: "\(buildDirectory())/execnet-worker")
}

/// The POSIX utilities the installer may use on the remote host (docs/SECURITY.md), plus `sh`.
let documentedUtilities = ["sh", "uname", "id", "ls", "mkdir", "cat", "dd", "wc", "chmod", "mv", "rm"]

/// Builds a minimal root under `path`: /bin with the shell and the documented utilities, the
/// libraries they load at the paths this machine has them (glibc and what coreutils need), the
/// rest of glibc's libraries, a /dev/null, empty /tmp, /root and /proc (a mount point), and nothing else.
func makeMinimalRoot(_ path: String) async throws {
    let script = """
    set -eu
    root=$1; shift
    mkdir -p "$root/bin" "$root/tmp" "$root/root" "$root/dev" "$root/proc" "$root/shim"
    mknod -m 666 "$root/dev/null" c 1 3
    for tool in "$@"; do
      p=$(command -v "$tool")
      cp -L "$p" "$root/bin/$tool"
      for lib in $(ldd "$p" | grep -o '/[^ ]*'); do
        mkdir -p "$root${lib%/*}"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
      done
    done
    # The rest of glibc's own libraries (a host with a glibc has them all), from libc's directory.
    libc=$(ldd "$(command -v sh)" | grep -o '/[^ ]*/libc[.]so[.]6')
    for lib in libc libm libmvec libpthread libdl librt libresolv libutil libanl; do
      for file in "${libc%/*}/$lib".so.*; do
        [ -e "$file" ] && cp -L "$file" "$root$file"
      done
    done
    """
    try await host(["/bin/sh", "-c", script, "sh", path] + documentedUtilities)
}

/// Every file under `root` whose name starts with one of `prefixes`.
func filesNamed(_ prefixes: [String], under root: String) async throws -> [String] {
    try await host(["find", root, "-type", "f"]).split(separator: "\n").filter { line in
        let name = line.split(separator: "/").last.map(String.init) ?? ""
        return prefixes.contains { name.hasPrefix($0) }
    }.map(String.init)
}

/// The environment of a runner whose cache is `cache` on this machine.
func localEnvironment(cache: String, path: String = "/usr/local/bin:/usr/bin:/bin") -> [String] {
    ["PATH=\(path)", "HOME=/nonexistent", "XDG_CACHE_HOME=\(cache)"]
}

/// Asserts that `body` throws the ``WorkerBundleError`` `matching` accepts.
func expectBundleError(_ body: () async throws -> String, sourceLocation: SourceLocation = #_sourceLocation,
                       matching: (WorkerBundleError) -> Bool) async {
    do {
        let path = try await body()
        Issue.record("expected a WorkerBundleError, got the path \(path)", sourceLocation: sourceLocation)
    } catch let error as WorkerBundleError {
        #expect(matching(error), "unexpected \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a WorkerBundleError, got \(error)", sourceLocation: sourceLocation)
    }
}

extension ProcessTests {
    @Suite struct WorkerBundleTests {
        @Test func theBundleHoldsTheWorkerAndEveryNonGlibcLibraryItLoads() async throws {
            let bundle = try await stockWorkerBundle()
            let names = bundle.files.map(\.name)
            #expect(names.first == WorkerBundle.workerName)
            for expected in ["libzmq.so.5", "libsodium.so.23", "libstdc++.so.6", "libgcc_s.so.1", "libswiftCore.so"] {
                #expect(names.contains(expected), "\(expected) missing from \(names)")
            }
            for glibc in ["libc.so.6", "libm.so.6", "libpthread.so.0", "libresolv.so.2"] {
                #expect(!names.contains(glibc), "\(glibc) is glibc's and must not be shipped")
            }
            #expect(!names.contains { $0.hasPrefix("ld-linux") })
            var machine = utsname()
            uname(&machine)
            let local = withUnsafeBytes(of: machine.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            #expect(bundle.architecture == local)
            #expect(bundle.loader?.hasPrefix("/") == true)
            let required = try #require(bundle.requiredGlibc)
            #expect(ELFFile.versionNumbers(required)?.first == 2)
            #expect(bundle.contentHash.count == 64 && bundle.contentHash.allSatisfy(\.isHexDigit))
            #expect(bundle.pack.offsets.allSatisfy { $0 % 512 == 0 })
            // Every file finds its libraries beside itself.
            for file in bundle.files {
                let elf = try ELFFile(file.contents)
                #expect(elf.architecture == local)
            }
            let again = try WorkerBundle.make(workerExecutable: "\(buildDirectory())/execnet-worker")
            #expect(again.contentHash == bundle.contentHash, "the hash must not depend on when the bundle is made")
        }

        @Test func aBundleIsCopiedOnceAndLaterInstallsCopyNothing() async throws {
            let scratch = try ScratchDirectory()
            let bundle = try await stockWorkerBundle()
            let runner = ShellRunner(environment: localEnvironment(cache: "\(scratch.path)/cache"))
            let path = try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner)
            #expect(path == "\(scratch.path)/cache/swift-execnet/bundles/\(bundle.contentHash)/execnet-worker")
            #expect(runner.bytesSent == bundle.pack.bytes.count)
            let second = try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner)
            #expect(second == path)
            #expect(runner.bytesSent == bundle.pack.bytes.count, "the second install copied bytes")
            // The installed files are the bundle's, byte for byte, with their modes; the cache is private.
            for file in bundle.files {
                let installed = "\(scratch.path)/cache/swift-execnet/bundles/\(bundle.contentHash)/\(file.name)"
                #expect(try WorkerBundle.readWholeFile(installed) == file.contents, "\(file.name) differs")
                var info = stat()
                #expect(stat(installed, &info) == 0 && info.st_mode & 0o777 == file.mode)
            }
            var info = stat()
            #expect(stat("\(scratch.path)/cache/swift-execnet/bundles", &info) == 0 && info.st_mode & 0o077 == 0)
            // And the installed worker serves.
            let group = try Group()
            let gateway = try await group.makeGateway("popen//worker=\(path)")
            let echo = try gateway.remoteExec("echo")
            try await echo.send("bundled")
            #expect(try await echo.receive(timeout: .seconds(10)) == "bundled")
            await group.terminate(timeout: .seconds(2))
        }

        @Test func concurrentInstallsCopyOnceAndLeaveOneCompleteDirectory() async throws {
            let scratch = try ScratchDirectory()
            let bundle = try await stockWorkerBundle()
            // The same remote cache through one key: one copy for all.
            let shared = ShellRunner(environment: localEnvironment(cache: "\(scratch.path)/a"), installKey: "test@a")
            let paths = try await withThrowingTaskGroup(of: String.self) { tasks in
                for _ in 0..<5 { tasks.addTask { try await WorkerBundleInstaller.ensureInstalled(bundle, on: shared) } }
                return try await tasks.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(paths).count == 1 && paths.count == 5)
            #expect(shared.bytesSent == bundle.pack.bytes.count, "5 concurrent installs sent \(shared.bytesSent) bytes")
            // Independent installers (as from several client processes) racing for one cache: each
            // may copy, the rename is atomic, one directory wins, no temporary directory is left.
            let cache = "\(scratch.path)/b"
            let racers = (0..<4).map { _ in ShellRunner(environment: localEnvironment(cache: cache)) }
            let raced = try await withThrowingTaskGroup(of: String.self) { tasks in
                for racer in racers { tasks.addTask { try await WorkerBundleInstaller.ensureInstalled(bundle, on: racer) } }
                return try await tasks.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(raced).count == 1)
            let bundles = "\(cache)/swift-execnet/bundles"
            #expect(try await host(["ls", "-A", bundles]) == "\(bundle.contentHash)\n")
            let installed = try await host(["ls", "-A", "\(bundles)/\(bundle.contentHash)"]).split(separator: "\n").map(String.init)
            #expect(Set(installed) == Set(bundle.files.map(\.name) + [".complete"]))
        }

        @Test func aSquattedCacheDirectoryIsRefused() async throws {
            let scratch = try ScratchDirectory()
            let bundle = try await stockWorkerBundle()
            // World-writable.
            let open = "\(scratch.path)/open"
            try await host(["mkdir", "-p", "-m", "0777", "\(open)/swift-execnet"])
            try await host(["chmod", "0777", "\(open)/swift-execnet"])
            let openRunner = ShellRunner(environment: localEnvironment(cache: open))
            await expectBundleError({ try await WorkerBundleInstaller.ensureInstalled(bundle, on: openRunner) }) { error in
                if case .unsafeCache(let path, _) = error { return path == "\(open)/swift-execnet" }
                return false
            }
            #expect(openRunner.bytesSent == 0)
            // Owned by another user.
            let theirs = "\(scratch.path)/theirs"
            try await host(["mkdir", "-p", "-m", "0700", "\(theirs)/swift-execnet/bundles"])
            try await host(["chown", "-R", "12345:12345", "\(theirs)/swift-execnet"])
            let theirsRunner = ShellRunner(environment: localEnvironment(cache: theirs))
            await expectBundleError({ try await WorkerBundleInstaller.ensureInstalled(bundle, on: theirsRunner) }) { error in
                if case .unsafeCache(let path, let text) = error { return path == "\(theirs)/swift-execnet" && text.contains("12345") }
                return false
            }
            #expect(theirsRunner.bytesSent == 0)
        }

        @Test func aFullRemoteDiskIsATypedErrorWithTheRemotesText() async throws {
            let scratch = try ScratchDirectory()
            let bundle = try await stockWorkerBundle()
            let cache = "\(scratch.path)/tiny"
            try await host(["mkdir", "-m", "0700", cache])
            try await host(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", cache])
            defer { _ = try? LocalCommand.run(["umount", cache]) }
            let runner = ShellRunner(environment: localEnvironment(cache: cache))
            await expectBundleError({ try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner) }) { error in
                if case .noSpace(let text) = error { return text.contains("No space left on device") }
                return false
            }
            #expect(try await host(["ls", "-A", "\(cache)/swift-execnet/bundles"]) == "", "a failed copy left files behind")
        }

        @Test func theWorkerServesFromAMinimalRootWithNothingInstalled() async throws {
            let scratch = try ScratchDirectory()
            let root = "\(scratch.path)/root"
            try await makeMinimalRoot(root)
            // Nothing of the worker's is there: no libzmq, no Swift runtime, no C++ runtime.
            #expect(try await filesNamed(["libzmq", "libsodium", "libswift", "libstdc++", "libgcc_s", "libdispatch"], under: root) == [])
            let bundle = try await stockWorkerBundle()
            let runner = ShellRunner(chroot: root, environment: ["PATH=/bin", "HOME=/root"])
            let path = try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner)
            #expect(path == "/root/.cache/swift-execnet/bundles/\(bundle.contentHash)/execnet-worker")
            #expect(runner.bytesSent == bundle.pack.bytes.count)
            _ = try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner)
            #expect(runner.bytesSent == bundle.pack.bytes.count)

            // The worker runs inside the root and reaches this client's hub through its ipc socket,
            // whose directory a private mount namespace binds into the root. /proc is mounted there
            // as on every Linux host: the loader expands the worker's `$ORIGIN` from /proc/self/exe.
            let wrapper = "\(scratch.path)/chrooted-worker"
            let text = """
            #!/bin/sh
            d=${EXECNET_ENDPOINT#ipc://}; d=${d%/hub}
            exec unshare -m /bin/sh -c 'mkdir -p "$1$2" && mount --bind "$2" "$1$2" && mount -t proc proc "$1/proc" && exec chroot "$1" "$3"' sh '\(root)' "$d" '\(path)'

            """
            try WorkerBundle.writeWholeFile(wrapper, Array(text.utf8))
            chmod(wrapper, 0o755)
            let group = try Group()
            let gateway = try await group.makeGateway("popen//worker=\(wrapper)")
            let echo = try gateway.remoteExec("echo")
            try await echo.send("from the minimal root")
            #expect(try await echo.receive(timeout: .seconds(20)) == "from the minimal root")
            let info = try await gateway.remoteExec("info").receive(timeout: .seconds(10))
            #expect(info.dictValue?["pid"] == gateway.pid.map { .int(Int64($0)) })
            await group.terminate(timeout: .seconds(2))
            if let pid = gateway.pid { #expect(await waitUntilGone([pid])) }
        }

        @Test func anotherArchitectureIsATypedError() async throws {
            let scratch = try ScratchDirectory()
            let root = "\(scratch.path)/root"
            try await makeMinimalRoot(root)
            try WorkerBundle.writeWholeFile("\(root)/shim/uname", Array("#!/bin/sh\necho riscv64\n".utf8))
            chmod("\(root)/shim/uname", 0o755)
            let bundle = try await stockWorkerBundle()
            let runner = ShellRunner(chroot: root, environment: ["PATH=/shim:/bin", "HOME=/root"])
            await expectBundleError({ try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner) }) { error in
                error == .wrongArchitecture(remote: "riscv64", local: bundle.architecture)
            }
            #expect(runner.bytesSent == 0)
        }

        @Test func aTooOldGlibcIsATypedError() async throws {
            let scratch = try ScratchDirectory()
            let root = "\(scratch.path)/root"
            try await makeMinimalRoot(root)
            try WorkerBundle.writeWholeFile("\(root)/shim/getconf", Array("#!/bin/sh\necho glibc 2.17\n".utf8))
            chmod("\(root)/shim/getconf", 0o755)
            let bundle = try await stockWorkerBundle()
            let required = try #require(bundle.requiredGlibc)
            let runner = ShellRunner(chroot: root, environment: ["PATH=/shim:/bin", "HOME=/root"])
            await expectBundleError({ try await WorkerBundleInstaller.ensureInstalled(bundle, on: runner) }) { error in
                error == .glibcTooOld(remote: "2.17", required: required)
            }
            #expect(runner.bytesSent == 0)
        }

        @Test func theRemoteLoadersCheckCatchesAMissingLibrary() async throws {
            // A bundle that lacks a library the worker loads fails the loader's check before it is
            // renamed into place: nothing half-usable is ever in the cache.
            let scratch = try ScratchDirectory()
            let root = "\(scratch.path)/root"
            try await makeMinimalRoot(root)
            let full = try await stockWorkerBundle()
            let broken = try WorkerBundle(files: full.files.filter { $0.name != "libzmq.so.5" })
            let runner = ShellRunner(chroot: root, environment: ["PATH=/bin", "HOME=/root"])
            await expectBundleError({ try await WorkerBundleInstaller.ensureInstalled(broken, on: runner) }) { error in
                if case .installFailed(_, let text) = error { return text.contains("libzmq.so.5") }
                return false
            }
            #expect(try await host(["ls", "-A", "\(root)/root/.cache/swift-execnet/bundles"]) == "")
        }
    }
}
