// What a client may do to the processes and files around it, against real processes: the
// environment it may give a worker (through a real agent and through popen), the exec task of an
// agent without --allow-exec, the runtime directory another user made (or a link planted in it),
// and the processes a worker leaves behind when it, or its client, is killed.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whether `pid` is a process that still runs: it exists and is not a zombie (an orphan's zombie
/// waits for a reaper that may never come in a test machine's init).
func isRunning(_ pid: Int32) -> Bool {
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let count = read(fd, &buffer, buffer.count)
    guard count > 0, let paren = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")), paren + 2 < count else { return false }
    let state = buffer[paren + 2]
    return state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
}

/// Waits up to `timeout` until none of `pids` runs; true if none does.
func waitUntilNotRunning(_ pids: [Int32], timeout: Duration = .seconds(10)) async -> Bool {
    (try? await eventually(within: timeout, every: .milliseconds(10)) { !pids.contains(where: isRunning) }) ?? false
}

/// A new private (0700) directory under /tmp.
func makePrivateDirectory(_ prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        throw ExecnetError(.transport, "mkdtemp failed")
    }
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Removes a test directory tree (no symbolic link is followed).
func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if info.st_mode & S_IFMT == S_IFDIR {
        if let dir = opendir(path) {
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { removeTree("\(path)/\(name)") }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// Runs ExecnetTestClient with `arguments` and `environment`; returns its first line and stops it.
func runTestClient(_ arguments: [String] = [], environment: [String]) async throws -> String {
    let (client, line) = try await startChild("\(buildDirectory())/ExecnetTestClient", arguments, environment: environment)
    stopChild(client)
    return line
}

/// The output of an exec channel until it has `lines` lines.
func execLines(_ channel: Channel, _ lines: Int) async throws -> [String] {
    var text: [UInt8] = []
    while text.count(where: { $0 == 10 }) < lines {
        guard case .tuple(let parts) = try await channel.receive(timeout: .seconds(10)), parts.count == 2,
            case .bytes(let chunk) = parts[1]
        else { break }
        text += chunk
    }
    return String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
}

/// Receives the rest of a channel (the exec task's exit status) until it ends, so the gateway is
/// terminated with no traffic in flight.
func drain(_ channel: Channel) async throws {
    for try await _ in channel {}
}

extension ProcessTests {
    @Suite struct ProcessSafetyTests {
        // MARK: - The environment a client gives a worker

        @Test func anAgentRefusesClientVariablesThatLoadCodeOrShadowItsOwn() async throws {
            let fixture = try BrokerFixture.current()
            let spec = "broker=\(fixture.endpoint)//worker=\(buildDirectory())/ExecnetTestWorker"
            let group = try Group()
            for variable in ["LD_PRELOAD=/tmp/evil.so", "EXECNET_ENDPOINT=tcp://127.0.0.1:1", "EXECNET_EXEC_DISABLED=0",
                             "GCONV_PATH=/tmp", "BASH_ENV=/tmp/x", "MALLOC_TRACE=/tmp/x"] {
                let name = String(variable.prefix { $0 != "=" })
                do {
                    _ = try await group.makeGateway("\(spec)//env:\(variable)", startupTimeout: .seconds(10))
                    Issue.record("the agent started a worker with \(name) set by the client")
                } catch let error as ExecnetError {
                    #expect(error.code == .spawnFailed, "\(error)")
                    #expect(error.message.contains(name), "\(error)")
                }
            }
            // An ordinary variable still reaches the worker (and what it runs).
            let gateway = try await group.makeGateway("\(spec)//env:TEST_MODE=fast", startupTimeout: .seconds(10))
            let exec = try gateway.remoteExec("exec", .list(["/bin/sh", "-c", "printf '%s\\n' \"$TEST_MODE\""]))
            #expect(try await execLines(exec, 1) == ["fast"])
            try await drain(exec)
            let pids = group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(2))
            #expect(await waitUntilGone(pids))
        }

        @Test func aPopenGatewayAppliesTheSameRule() async throws {
            let group = try Group()
            for variable in ["LD_PRELOAD=/tmp/evil.so", "EXECNET_ENDPOINT=ipc:///tmp/x", "BASH_FUNC_ls%%=() { :; }"] {
                do {
                    _ = try await group.makeGateway(testWorkerSpec("//env:\(variable)"))
                    Issue.record("a popen worker started with \(variable)")
                } catch let error as ExecnetError {
                    #expect(error.code == .invalidSpec, "\(error)")
                    #expect(error.message.contains(String(variable.prefix { $0 != "=" })), "\(error)")
                }
            }
            #expect(group.gateways.allSatisfy { $0.pid == nil })
            await group.terminate(timeout: .seconds(1))
        }

        @Test func execRunsOnlyInWorkersOfAnAgentStartedWithAllowExec() async throws {
            let fixture = try BrokerFixture.current()
            let agent = try await startAgent(fixture.endpoint, name: "noexechost")
            defer { stopChild(agent) }
            let group = try Group()
            for worker in ["execnet-worker", "ExecnetTestWorker"] {
                let spec = "broker=\(fixture.endpoint)//worker=\(buildDirectory())/\(worker)"
                let refused = try await group.makeGateway(spec + "//host=noexechost", startupTimeout: .seconds(10))
                let marker = "/tmp/execnet-exec-ran-\(getpid())"
                do {
                    _ = try await refused.remoteExec("exec", .list(["/bin/touch", .string(marker)])).receive(timeout: .seconds(10))
                    Issue.record("exec ran in a worker of an agent without --allow-exec")
                } catch let error as RemoteError {
                    #expect(error.text.contains("--allow-exec"), "\(error.text)")
                }
                #expect(access(marker, F_OK) != 0)
                unlink(marker)
                // Other tasks still run there.
                let echo = try refused.remoteExec("echo")
                try await echo.send("still serving")
                #expect(try await echo.receive(timeout: .seconds(10)) == "still serving")
                try echo.close()
                // The fixture's agent runs with --allow-exec.
                let allowed = try await group.makeGateway(spec + "//host=testhost", startupTimeout: .seconds(10))
                let exec = try allowed.remoteExec("exec", .list(["/bin/sh", "-c", "echo ran"]))
                #expect(try await execLines(exec, 1) == ["ran"])
                try await drain(exec)
            }
            let pids = group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(2))
            #expect(await waitUntilGone(pids))
        }

        // MARK: - The runtime directory

        @Test func aRuntimeDirectoryAnotherUserCouldEnterIsRefused() async throws {
            let runtime = try makePrivateDirectory("execnet-xdg")
            defer { removeTree(runtime) }
            let base = "\(runtime)/execnet"
            let environment = ["XDG_RUNTIME_DIR=\(runtime)"]
            // Made by another user (root would pass any access check: ownership is what counts).
            if geteuid() == 0 {
                #expect(mkdir(base, 0o700) == 0)
                #expect(chown(base, 65534, 65534) == 0)
                let line = try await runTestClient(environment: environment)
                #expect(line.hasPrefix("ERROR") && line.contains(base) && line.contains("owned by uid 65534"), "\(line)")
                rmdir(base)
            }
            // Ours, but open to everyone.
            #expect(mkdir(base, 0o700) == 0)
            #expect(chmod(base, 0o777) == 0)
            var line = try await runTestClient(environment: environment)
            #expect(line.hasPrefix("ERROR") && line.contains(base) && line.contains("mode 0777"), "\(line)")
            rmdir(base)
            // A link to a directory elsewhere.
            let elsewhere = try makePrivateDirectory("execnet-elsewhere")
            defer { removeTree(elsewhere) }
            #expect(symlink(elsewhere, base) == 0)
            line = try await runTestClient(environment: environment)
            #expect(line.hasPrefix("ERROR") && line.contains("symbolic link"), "\(line)")
            unlink(base)
            // A private one is used.
            line = try await runTestClient(environment: environment)
            #expect(line.hasPrefix("READY"), "\(line)")
            #expect(privateDirectoryProblem(base, owner: geteuid()) == nil)
        }

        @Test func staleDirectoryCleanupNeverFollowsALink() async throws {
            let runtime = try makePrivateDirectory("execnet-xdg")
            defer { removeTree(runtime) }
            let base = "\(runtime)/execnet"
            #expect(mkdir(base, 0o700) == 0)
            // A victim directory with a file, and a link to it named like a dead client's directory.
            let victim = try makePrivateDirectory("execnet-victim")
            defer { removeTree(victim) }
            let precious = "\(victim)/precious"
            let fd = open(precious, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            #expect(fd >= 0)
            close(fd)
            let deadPid = "2147483646"
            #expect(symlink(victim, "\(base)/\(deadPid)-planted") == 0)
            // A real stale directory of a dead client, which cleanup removes.
            #expect(mkdir("\(base)/\(deadPid)-stale", 0o700) == 0)
            let socket = open("\(base)/\(deadPid)-stale/hub", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            close(socket)
            let line = try await runTestClient(environment: ["XDG_RUNTIME_DIR=\(runtime)"])
            #expect(line.hasPrefix("READY"), "\(line)")
            #expect(access("\(base)/\(deadPid)-stale", F_OK) != 0, "the stale directory was not removed")
            #expect(access(precious, F_OK) == 0, "cleanup deleted a file through a link")
            var info = stat()
            #expect(lstat(victim, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR)
        }

        // MARK: - Orphans

        @Test(arguments: GatewayKind.allCases) func anExecCommandAndWhatItStartedDieWithTheirKilledWorker(kind: GatewayKind) async throws {
            let group = try await Group([try testWorkerSpec(kind)])
            let exec = try group[0].remoteExec("exec", .list(["/bin/sh", "-c", "echo $$; sleep 1000 & echo $!; wait"]))
            let pids = try await execLines(exec, 2).compactMap { Int32($0) }
            #expect(pids.count == 2)
            #expect(pids.allSatisfy(isRunning))
            group[0].kill(signal: SIGKILL)
            await group.terminate(timeout: .seconds(2))
            #expect(await waitUntilNotRunning(pids), "survivors: \(pids.filter(isRunning))")
        }

        @Test(arguments: [false, true]) func aKilledClientLeavesNoProcessBehind(wrapper: Bool) async throws {
            let worker = "\(buildDirectory())/ExecnetTestWorker"
            // The wrapper runs the worker as its child (the command after it keeps the shell).
            let script = makeScript("\(worker) \"$@\"\nexit $?")
            defer { unlink(script) }
            let spec = "popen//worker=\(wrapper ? script : worker)"
            let (client, line) = try await startChild("\(buildDirectory())/ExecnetTestClient", ["exec-child", spec])
            let words = line.split(separator: " ")
            guard words.first == "READY", words.count == 4 else {
                stopChild(client)
                Issue.record("the client did not start: \(line)")
                return
            }
            let pids = words.dropFirst().compactMap { Int32($0) }
            #expect(pids.count == 3)
            #expect(wrapper == (pids[0] != pids[1]), "spawned \(pids[0]), said hello \(pids[1])")
            #expect(pids.allSatisfy(isRunning))
            _ = cexecnetSignal(client.pidfd, SIGKILL)
            try await reap(client.pid)
            close(client.pidfd)
            #expect(await waitUntilNotRunning(pids), "survivors: \(pids.filter(isRunning))")
        }
    }
}
