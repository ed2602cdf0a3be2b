// Gateways against real processes: start-up and its failures, status and info, bad input, output
// forwarding, concurrency, flow control, and garbage frames sent to the hub.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Synchronization
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Writes an executable shell script and returns its path.
func makeScript(_ body: String) -> String {
    var template = Array("/tmp/execnet-test-XXXXXX".utf8CString)
    // Close-on-exec: a worker spawned meanwhile by another test must not keep it open for writing
    // (exec of the script would then fail with ETXTBSY); mkostemp is not visible from Swift here.
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    let text = "#!/bin/sh\n" + body + "\n"
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fchmod(fd, 0o755) == 0 ? fd : fd)
    return String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension ProcessTests {
    @Suite struct GatewayTests {
        @Test func aGatewayRunsTheStockWorkerAndItsBuiltinTasks() async throws {
            let group = try Group()
            let gateway = try await group.makeGateway("popen//worker=\(buildDirectory())/execnet-worker")
            let pid = try #require(gateway.pid)
            #expect(gateway.id == "gw0")
            #expect(gateway.remoteInfo?.pid == Int64(pid))
            let echo = try gateway.remoteExec("echo")
            try await echo.send("hello")
            #expect(try await echo.receive(timeout: .seconds(10)) == "hello")
            try echo.close()
            let info = try await gateway.remoteExec("info").receive(timeout: .seconds(10))
            #expect(info.dictValue?["pid"] == .int(Int64(pid)))
            let exec = try gateway.remoteExec("exec", .list(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]))
            var output: [String: [UInt8]] = [:]
            var status: Value?
            for try await item in exec {
                guard case .tuple(let parts) = item, case .string(let kind) = parts[0] else { continue }
                if case .bytes(let chunk) = parts[1] { output[kind, default: []] += chunk } else { status = item }
            }
            #expect(output["stdout"] == Array("out\n".utf8))
            #expect(output["stderr"] == Array("err\n".utf8))
            #expect(status == .tuple(["exit", 3]))
            await group.terminate(timeout: .seconds(2))
            #expect(await waitUntilGone([pid]))
        }

        @Test(arguments: GatewayKind.allCases) func closingAnExecChannelKillsTheCommand(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let exec = try group[0].remoteExec("exec", .list(["/bin/sh", "-c", "echo $$; exec sleep 30"]))
                let first = try await exec.receive(timeout: .seconds(10))
                guard case .tuple(let parts) = first, case .bytes(let bytes) = parts[1],
                    let pid = Int32(String(decoding: bytes.filter { $0 != 10 }, as: UTF8.self))
                else {
                    Issue.record("unexpected first item \(first)")
                    return
                }
                #expect(processExists(pid))
                try exec.close()
                #expect(await waitUntilGone([pid]))
            }
        }

        @Test func aBadSpecFailsBeforeAnyProcessStarts() async throws {
            let group = try Group()
            for spec in ["popen//_x=1", "popen//id=a//id=b", "ssh=", "socket=1.2.3.4:8888", "popen//ssh_config=/x", "popen//nice=fast"] {
                await expectExecnetError(.invalidSpec) { try await group.makeGateway(spec) }
            }
            #expect(group.count == 0)
            let spec = try XSpec("popen//id=w1//chdir=/tmp/x//env:MODE=fast//nice=5")
            #expect(spec.id == "w1" && spec.chdir == "/tmp/x" && spec.nice == 5)
            #expect(spec.environment["MODE"] == "fast")
        }

        @Test func aMissingWorkerExecutableNamesThePathsTried() async throws {
            let group = try Group()
            do {
                _ = try await group.makeGateway("popen//worker=/nonexistent/worker")
                Issue.record("expected workerNotFound")
            } catch let error as ExecnetError {
                #expect(error.code == .workerNotFound)
                #expect(error.message.contains("/nonexistent/worker"))
            }
        }

        @Test func aWorkerThatNeverSaysHelloTimesOutAndIsKilled() async throws {
            let sleeper = makeScript("exec sleep 30")
            defer { unlink(sleeper) }
            let group = try Group()
            let started = ContinuousClock.now
            let starting = Task { try await group.makeGateway("popen//worker=\(sleeper)", startupTimeout: .milliseconds(300)) }
            let pid = try await pollFor(within: .seconds(5), every: .milliseconds(2)) { group.gateways.first?.pid }
            await expectExecnetError(.timeout) { try await starting.value }
            #expect(started.duration(to: .now) < .seconds(5))
            // The silent process was killed.
            #expect(await waitUntilGone([try #require(pid)]))
            // /bin/sleep without arguments exits at once: that is a start-up death, not a hang.
            await expectExecnetError(.workerDied) { try await group.makeGateway("popen//worker=/bin/sleep") }
        }

        @Test func chdirIsCreatedAndEnvironmentIsSet() async throws {
            let directory = "/tmp/execnet-test-chdir-\(getpid())/nested"
            let group = try Group()
            let gateway = try await group.makeGateway(testWorkerSpec("//chdir=\(directory)//env:TEST_MODE=fast"))
            #expect(gateway.remoteInfo?.cwd == directory)
            let pid = try #require(gateway.pid)
            defer { Task { #expect(await waitUntilGone([pid])) } }
            let exec = try gateway.remoteExec("exec", .list(["/bin/sh", "-c", "printf %s \"$TEST_MODE\""]))
            let first = try await exec.receive(timeout: .seconds(10))
            #expect(first == .tuple(["stdout", .bytes(Array("fast".utf8))]))
            await group.terminate(timeout: .seconds(2))
            rmdir(directory)
            rmdir("/tmp/execnet-test-chdir-\(getpid())")
        }

        @Test(arguments: GatewayKind.allCases) func anUnknownTaskIsARemoteErrorNamingIt(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("no-such-task")
                do {
                    _ = try await channel.receive(timeout: .seconds(10))
                    Issue.record("expected RemoteError")
                } catch let error as RemoteError {
                    #expect(error.text.contains("no-such-task"))
                }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aValueThatCannotBeEncodedFailsThatSendOnly(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let echo = try group[0].remoteExec("echo")
                let foreign = group[1].newChannel()
                await expectExecnetError(.invalidState) { try await echo.send(.channel(foreign)) }
                // A set holding a NaN-free but foreign channel is refused too, and nothing was sent.
                await expectExecnetError(.invalidState) { try await echo.send(.list([1, .channel(foreign)])) }
                try await echo.send("still fine")
                #expect(try await echo.receive(timeout: .seconds(10)) == "still fine")
                try echo.close()
            }
        }

        @Test(arguments: GatewayKind.allCases) func remoteStatusAnswersWhileEveryTaskIsBusy(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                var channels: [Channel] = []
                for _ in 0..<200 { channels.append(try group[0].remoteExec("wait-release")) }
                for _ in 0..<8 { channels.append(try group[0].remoteExec("wait-release-thread")) }
                // Wait until every task is executing.
                var status = try await group[0].remoteStatus(timeout: .seconds(10))
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while status.executingCount < 208 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                    status = try await group[0].remoteStatus(timeout: .seconds(10))
                }
                #expect(status.executingCount == 208)
                #expect(status.channelCount >= 208)
                for (index, channel) in channels.enumerated() { try await channel.send(.int(Int64(index))) }
                for (index, channel) in channels.enumerated() {
                    #expect(try await channel.receive(timeout: .seconds(10)) == .int(Int64(index)))
                }
                for channel in channels { try await channel.waitClose(timeout: .seconds(10)) }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aThousandChannelsAcrossEightGatewaysWork(kind: GatewayKind) async throws {
            try await withTestGroup(8, kind: kind) { group in
                var channels: [Channel] = []
                for index in 0..<1000 { channels.append(try group[index % 8].remoteExec("echo")) }
                for (index, channel) in channels.enumerated() { try await channel.send(.int(Int64(index))) }
                for (index, channel) in channels.enumerated() {
                    #expect(try await channel.receive(timeout: .seconds(20)) == .int(Int64(index)))
                    try channel.close()
                }
                // Ended channels leave the registries: nothing grows with the number of tasks run.
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while group.gateways.contains(where: { $0.connection.openChannelCount > 0 }) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(group.gateways.allSatisfy { $0.connection.openChannelCount == 0 })
                for gateway in group.gateways {
                    #expect(try await gateway.remoteStatus(timeout: .seconds(10)).channelCount == 0)
                }
            }
        }

        @Test func workerOutputNeverDisturbsItsChannelAndReachesTheHandlerByGateway() async throws {
            let lines = Mutex<[(String, WorkerOutputStream, [UInt8])]>([])
            ExecnetSettings.setWorkerOutputHandler { gatewayID, stream, line in
                lines.withLock { $0.append((gatewayID, stream, line)) }
            }
            defer { ExecnetSettings.setWorkerOutputHandler(nil) }
            try await withTestGroup(1) { group in
                let channel = try group[0].remoteExec("write-raw")
                #expect(try await channel.receive(timeout: .seconds(10)) == "ok")
                let expected: [UInt8] = Array("not protocol".utf8)
                let deadline = ContinuousClock.now.advanced(by: .seconds(5))
                while lines.withLock({ $0.filter { $0.2 == expected }.count }) < 2 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let seen = lines.withLock { $0.filter { $0.0 == "gw0" && $0.2 == expected }.map(\.1) }
                #expect(seen.contains(.stdout) && seen.contains(.stderr))
                #expect(lines.withLock { $0.contains { $0.2 == [0x00, 0xff, 0x51] } })
            }
        }

        @Test func garbageFramesToTheHubAreDroppedAndAVersionMismatchIsTyped() async throws {
            let sleeper = makeScript("exec sleep 30")
            defer { unlink(sleeper) }
            let group = try Group()
            let runtime = try ClientRuntime.current()
            let starting = Task { try await group.makeGateway("popen//worker=\(sleeper)", startupTimeout: .seconds(20)) }
            let fakePid = try #require(try await pollFor(within: .seconds(10), every: .milliseconds(2)) { group.gateways.first?.pid },
                                        "the silent worker did not start")
            let fake = group[0]
            let context = try ZMQContext()
            let stranger = try ZMQSocket(context: context, type: .dealer)
            try stranger.setLinger(milliseconds: 0)
            try stranger.connect(runtime.endpoint)
            let impostor = try ZMQSocket(context: context, type: .dealer)
            try impostor.setLinger(milliseconds: 0)
            try impostor.setRoutingID(fake.routingID)
            try impostor.connect(runtime.endpoint)
            let garbage: [[[UInt8]]] = [
                [[1, 2, 3]], [[0, 0, 0, 1], [99], []], [[0, 0, 1], [3], []], [[0, 0, 0, 1], [3, 3], []],
                [[0, 0, 0, 1], [MessageType.data.rawValue], [0xff, 0xfe]], [[0, 0, 0, 0], [MessageType.hello.rawValue], [1, 2]],
                [], [[0, 0, 0, 9], [MessageType.credit.rawValue], [0x51]],
            ]
            for frames in garbage where !frames.isEmpty {
                try stranger.send(frames)
                try impostor.send(frames)
            }
            var hello: [UInt8] = []
            try Serializer.encodeInternal(.dict(["protocol": 99]), into: &hello)
            try impostor.send(WireMessage(channelID: 0, type: .hello, payload: hello).frames)
            do {
                _ = try await starting.value
                Issue.record("expected a protocol version mismatch")
            } catch let error as ExecnetError {
                #expect(error.code == .protocolVersionMismatch)
                #expect(error.message.contains("99") && error.message.contains("\(wireProtocolVersion)"))
            }
            stranger.close()
            impostor.close()
            context.terminate()
            // The hub still serves real gateways.
            try await withTestGroup(1) { group in
                let echo = try group[0].remoteExec("echo")
                try await echo.send(1)
                #expect(try await echo.receive(timeout: .seconds(10)) == 1)
                try echo.close()
            }
            await group.terminate(timeout: .seconds(1))
            #expect(await waitUntilGone([fakePid]))
        }
    }
}
