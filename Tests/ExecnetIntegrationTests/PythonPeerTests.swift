// A client and a worker written in Python (pyzmq and execnet 2.1.2's serializer) from
// docs/PROTOCOL.md alone, run against the real Swift processes: the stock worker, a Swift client,
// and the broker with its agent. They keep the doc true: a change of the wire that the doc does not
// describe breaks them. The Python environment comes from `bash scripts/python-venv.sh`; without it
// these tests fail (they never skip).

import Execnet
@testable import ExecnetCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The package's root directory (this file is `Tests/ExecnetIntegrationTests/PythonPeerTests.swift`).
private func packageRoot(_ file: String = #filePath) -> String {
    var path = Substring(file)
    for _ in 0..<3 { path = path[..<(path.lastIndex(of: "/") ?? path.startIndex)] }
    return String(path)
}

/// The Python of the venv `scripts/python-venv.sh` makes.
private func venvPython() throws -> String {
    let python = packageRoot() + "/.venv-crosscheck/bin/python"
    guard access(python, X_OK) == 0 else {
        throw ExecnetError(.workerNotFound, "the Python venv for the Python peer tests is missing (\(python)): "
            + "run `bash scripts/python-venv.sh` (the README's set-up line; .ci/run does it)")
    }
    return python
}

/// A peer script in Tests/PythonPeers.
private func peerScript(_ name: String) -> String {
    packageRoot() + "/Tests/PythonPeers/" + name
}

/// How a finished child process ended, with its output.
private struct Finished: Sendable {
    let exit: WorkerExit
    let output: String
}

/// Runs `executable` to its end (killed after `timeout`), collecting stdout and stderr, on a thread of
/// its own: the cooperative pool never blocks.
private func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> Finished {
    let environment = WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") }
    let child = try WorkerProcess.spawn(executable: executable, arguments: arguments, environment: environment)
    return await withCheckedContinuation { (continuation: CheckedContinuation<Finished, Never>) in
        OSThread(name: "test-python") {
            var output: [UInt8] = []
            var open = [child.stdout, child.stderr]
            var buffer = [UInt8](repeating: 0, count: 65536)
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while !open.isEmpty && ContinuousClock.now < deadline {
                var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
                for pfd in fds where pfd.revents != 0 {
                    let count = read(pfd.fd, &buffer, buffer.count)
                    if count > 0 {
                        output += buffer[0..<count]
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(pfd.fd)
                        open.removeAll { $0 == pfd.fd }
                    }
                }
            }
            for fd in open { close(fd) }
            if !open.isEmpty { WorkerProcess.killGroup(child.pid) }
            var exit: WorkerExit?
            while exit == nil {
                exit = WorkerProcess.reap(pidfd: child.pidfd, killingGroup: child.pid)
                if exit == nil {
                    var pfd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&pfd, 1, 1000)
                }
            }
            close(child.pidfd)
            continuation.resume(returning: Finished(exit: exit!, output: String(decoding: output, as: UTF8.self)))
        }.detach()
    }
}

/// Runs a Python peer that writes what it saw to `--out` (execnet.dumps) and returns that value.
private func runPeer(_ script: String, _ arguments: [String]) async throws -> Value {
    let python = try venvPython()
    let out = "/tmp/execnet-pypeer-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
    defer { unlink(out) }
    let finished = try await run(python, [peerScript(script)] + arguments + ["--out", out])
    guard finished.exit == .exited(0) else {
        throw ExecnetError(.workerDied, "\(script) \(finished.exit):\n\(finished.output)")
    }
    let fd = open(out, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ExecnetError(.transport, "\(script) wrote no result:\n\(finished.output)") }
    defer { close(fd) }
    return try load(from: fd)
}

/// The values the Python peers echo, as Swift builds them (the Python client sends its own kinds).
private let echoSamples: [Value] = [
    nil, true, 0, -1, .int(Int64(Int32.min)), .bigInt(try! BigInteger(parsing: "1180591620717411303424")), 1.5, -0.0, "text é ✓", "",
    .bytes([0, 255]), [1, [2, [3]]], .tuple([1, "a", .bytes([98])]), ["k": [nil, 1.0]], .set([1, 2, 3]),
    .frozenSet(["x"]), .complex(Complex(real: 1, imaginary: 2)),
]

extension ProcessTests {
    @Suite struct PythonPeerTests {
        /// The Python client binds a ROUTER, starts the stock worker with the documented environment and
        /// runs every stock task on its own channels, then the exit handshake.
        @Test func aPythonClientWrittenFromTheDocDrivesTheStockWorker() async throws {
            let result = try await runPeer("doc_client.py", ["--worker", "\(buildDirectory())/execnet-worker", "--count", "3000"])
            let hello = try #require(result["hello"]?.dictValue)
            #expect(hello[.string("protocol")] == 2)
            #expect(hello[.string("tasks")] == ["echo", "exec", "execnet.rsync", "info"])
            let sent = try #require(result["sent"]?.listValue)
            #expect(sent.count > 3000, "more than a window, so credit flowed both ways")
            #expect(result["echoed"] == result["sent"], "every value came back, in order, as sent")
            #expect(result["echo_error"] == Value.none)
            #expect(result["info"]?[0]?["pid"] == result["worker_pid"])
            #expect(result["exec"] == [.tuple(["stdout", .bytes(Array("out\n".utf8))]),
                                       .tuple(["stderr", .bytes(Array("err\n".utf8))]), .tuple(["exit", 3])])
            #expect(result["exec_error"] == Value.none)
            #expect(result["unknown_task_error"] == "unknown task 'no-such-task'; this worker has: echo, exec, execnet.rsync, info")
            #expect(result["status"]?[0]?["numexecuting"] == 0)
            #expect(result["status"]?[0]?["execmodel"] == "swift-concurrency")
            #expect(result["bye"] == true)
            #expect(result["exit_code"] == 0, "the worker exited after FAREWELL")
        }

        /// A Swift client runs the Python worker (`worker=PATH`): values of every kind, more than a
        /// window each way, arguments, a task's error, status, and a clean exit.
        @Test func aPythonWorkerWrittenFromTheDocServesASwiftClient() async throws {
            let python = try venvPython()
            let worker = makeScript("exec '\(python)' '\(peerScript("doc_worker.py"))'")
            defer { unlink(worker) }
            let group = try await Group(["popen//worker=\(worker)"])
            let gateway = try #require(group.gateways.first)
            #expect(gateway.remoteInfo?.pid == gateway.pid.map(Int64.init))

            let echo = try gateway.remoteExec("echo")
            let items = echoSamples + (0..<3000).map { Value.int(Int64($0)) }
            async let sending: Void = { for item in items { try await echo.send(item) } }()
            var echoed: [Value] = []
            for _ in items { echoed.append(try await echo.receive(timeout: .seconds(30))) }
            try await sending
            #expect(echoed == items, "every value came back, in order, as sent")
            try echo.close()
            try await echo.waitClose(timeout: .seconds(10))

            let add = try gateway.remoteExec("add", 40, 2)
            #expect(try await add.receive(timeout: .seconds(10)) == 42)
            try await add.waitClose(timeout: .seconds(10))

            let fail = try gateway.remoteExec("fail")
            do {
                try await fail.waitClose(timeout: .seconds(10))
                Issue.record("the failing task's close carried no error")
            } catch let error as RemoteError {
                #expect(error.text == "ValueError: the doc worker was asked to fail")
            }
            let unknown = try gateway.remoteExec("no-such-task")
            await #expect(throws: RemoteError.self) { try await unknown.waitClose(timeout: .seconds(10)) }

            let status = try await gateway.remoteStatus()
            #expect(status.channelCount == 0, "every closed channel was forgotten: \(status)")
            let reports = await group.terminate(timeout: .seconds(5))
            #expect(reports.map(\.outcome) == [.exited(.exited(0))], "the exit handshake ended the worker: \(reports)")
        }

        /// The Python worker dies (exit status 3) while a channel is open: the channel ends with the
        /// end of channel whose cause names the exit.
        @Test func aDeadPythonWorkerEndsItsChannels() async throws {
            let python = try venvPython()
            let worker = makeScript("exec '\(python)' '\(peerScript("doc_worker.py"))'")
            defer { unlink(worker) }
            let group = try await Group(["popen//worker=\(worker)"])
            let gateway = try #require(group.gateways.first)
            let echo = try gateway.remoteExec("echo")
            try await echo.send("before")
            #expect(try await echo.receive(timeout: .seconds(10)) == "before")
            _ = try gateway.remoteExec("crash")
            do {
                let item = try await echo.receive(timeout: .seconds(10))
                Issue.record("received \(item) from a dead worker")
            } catch let error as ExecnetError {
                #expect(error.code == .endOfChannel)
                #expect(error.peerEnd?.exit == .exited(3), "\(error)")
            }
            await group.terminate(timeout: .seconds(1))
        }

        /// The Python worker on a host agent of the test broker (0.2 s heartbeats, a 1 s window): it heartbeats
        /// as the doc says, so it outlives idle spells several liveness windows long, and it serves a
        /// Swift client through the broker.
        @Test func aPythonWorkerWrittenFromTheDocServesThroughTheBroker() async throws {
            let python = try venvPython()
            let worker = makeScript("exec '\(python)' '\(peerScript("doc_worker.py"))'")
            defer { unlink(worker) }
            let fixture = try BrokerFixture.current()
            let agent = try await startAgent(fixture.endpoint, name: "pythonhost", slots: 2, ["--allow", worker])
            defer { stopChild(agent) }
            let group = try await Group(["broker=\(fixture.endpoint)//host=pythonhost//worker=\(worker)"])
            let gateway = try #require(group.gateways.first)
            let echo = try gateway.remoteExec("echo")
            let items = echoSamples + (0..<1500).map { Value.int(Int64($0)) }
            async let sending: Void = { for item in items { try await echo.send(item) } }()
            var echoed: [Value] = []
            for _ in items { echoed.append(try await echo.receive(timeout: .seconds(30))) }
            try await sending
            #expect(echoed == items, "every value came back through the broker, in order")
            // Idle for over two liveness windows (1 s each): only the worker's heartbeats keep it.
            // The idleness is the condition under test, not a wait for an event.
            try await Task.sleep(for: .milliseconds(2500))
            try await echo.send("still here")
            #expect(try await echo.receive(timeout: .seconds(10)) == "still here")
            try echo.close()
            try await echo.waitClose(timeout: .seconds(10))
            let reports = await group.terminate(timeout: .seconds(5))
            #expect(reports.map(\.outcome) == [.exited(.exited(0))], "the exit handshake ended the worker: \(reports)")
        }

        /// The Python client registers with a real broker, spawns the stock worker on the test agent,
        /// runs echo and exec, kills a second worker, ends the first and leaves.
        @Test func aPythonClientWrittenFromTheDocTalksToTheBroker() async throws {
            let fixture = try BrokerFixture.current()
            let result = try await runPeer("doc_broker_client.py", [
                "--broker", fixture.endpoint, "--worker", "\(buildDirectory())/execnet-worker", "--count", "1500",
            ])
            #expect(result["welcome"]?["protocol"] == 2)
            #expect(result["spawned"]?["host"] == "testhost")
            #expect(result["spawned"]?["pid"] == result["hello"]?["pid"])
            #expect(result["echoed"] == result["sent"], "every value came back through the broker, in order")
            #expect((result["echoed"]?.listValue?.count ?? 0) > 1024)
            #expect(result["exec"] == [.tuple(["stdout", .bytes(Array("broker\n".utf8))]), .tuple(["exit", 0])],
                    "the SPAWN's env reached the worker")
            #expect(result["killed"]?["signaled"] == .int(Int64(SIGKILL)))
            #expect(result["killed"]?["address"] == result["spawned_second"]?["address"])
            #expect(result["exited"]?["exited"] == 0, "PEER_LOST after a normal exit")
            #expect(result["exited"]?["address"] == result["spawned"]?["address"])
            #expect(result["status_workers"] == 0)
        }
    }
}
