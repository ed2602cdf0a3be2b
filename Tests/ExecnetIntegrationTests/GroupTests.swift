// Groups, MultiChannels, receive queues and termination against real processes: the seed's
// examples 1, 2 and 4, killed and exiting workers, a killed client, and the taskserver.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite struct GroupTests {
        @Test(arguments: GatewayKind.allCases) func seedExample1MultiChannelOfTwoGateways(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let ch1 = try group[0].remoteExec("send", 1)
                let ch2 = try group[1].remoteExec("send", 2)
                let mch = MultiChannel([ch1, ch2])
                #expect(mch.count == 2)
                #expect(mch[0] === ch1 && mch[1] === ch2)
                #expect(mch.contains(ch1) && mch.contains(ch2))
                let values = try await mch.receiveEach(timeout: .seconds(10))
                #expect(values.compactMap(\.intValue).reduce(0, +) == 3)

                let again = MultiChannel([try group[0].remoteExec("send", 1), try group[1].remoteExec("send", 2)])
                let pairs = try await again.receiveEachWithChannel(timeout: .seconds(10))
                #expect(pairs[0].0 === again[0] && pairs[0].1 == 1)
                #expect(pairs[1].0 === again[1] && pairs[1].1 == 2)
            }
        }

        @Test(arguments: GatewayKind.allCases) func seedExample2ReceiveQueue(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let ch1 = try group[0].remoteExec("send", 1)
                let ch2 = try group[1].remoteExec("send", 2)
                let mch = MultiChannel([ch1, ch2])
                let queue = try mch.makeReceiveQueue()
                let (chan1, res1) = try await queue.get()
                let (chan2, res2) = try await queue.get(timeout: .seconds(3))
                #expect(chan1 !== chan2)
                #expect((res1.intValue ?? 0) + (res2.intValue ?? 0) == 3)
                #expect(try mch.makeReceiveQueue() === queue)
                await expectExecnetError(.invalidState) { try await mch.receiveEach() }
            }
        }

        @Test(arguments: GatewayKind.allCases) func seedExample4TerminateDeliversOneEndmarkerPerChannel(kind: GatewayKind) async throws {
            let group = try await Group(Array(repeating: try testWorkerSpec(kind), count: 3))
            let pids = group.gateways.compactMap(\.pid)
            #expect(pids.count == 3)
            let mch = try group.remoteExec("plus-one")
            let queue = try mch.makeReceiveQueue(endmarker: 42)
            try await mch[0].send(1)
            let (_, res1) = try await queue.get(timeout: .seconds(10))
            #expect(res1 == 2)
            let started = ContinuousClock.now
            let reports = await group.terminate(timeout: .seconds(1))
            #expect(started.duration(to: .now) < .seconds(3))
            #expect(reports.count == 3)
            var channels: [Channel] = []
            for _ in 0..<3 {
                let (channel, item) = try await queue.get(timeout: .seconds(5))
                #expect(item == 42)
                channels.append(channel)
            }
            #expect(Set(channels.map(ObjectIdentifier.init)).count == 3)
            #expect(queue.count == 0)
            await expectExecnetError(.endOfChannel) { try await queue.get(timeout: .milliseconds(200)) }
            #expect("\(group)" == "<Group []>")
            #expect(await waitUntilGone(pids, timeout: .seconds(2)))
        }

        @Test func groupIdsIndexingAndDescription() async throws {
            try await withTestGroup(0, specs: [testWorkerSpec(), testWorkerSpec("//id=special"), testWorkerSpec()]) { group in
                #expect(group.count == 3)
                #expect(group.gateways.map(\.id) == ["gw0", "special", "gw1"])
                #expect(group["special"] === group[1])
                #expect(group.contains("gw1") && !group.contains("gw9"))
                #expect("\(group)" == "<Group [gw0, special, gw1]>")
                #expect(Array(group).count == 3)
                await expectExecnetError(.invalidSpec) { try await group.makeGateway(testWorkerSpec("//id=special")) }
            }
        }

        @Test(arguments: GatewayKind.allCases) func workersBlockedInReceiveExitPromptlyOnTerminate(kind: GatewayKind) async throws {
            let group = try await Group(Array(repeating: try testWorkerSpec(kind), count: 4))
            let pids = group.gateways.compactMap(\.pid)
            let mch = try group.remoteExec("wait-release")
            let queue = try mch.makeReceiveQueue(endmarker: "end")
            let started = ContinuousClock.now
            let reports = await group.terminate(timeout: .seconds(5))
            let elapsed = started.duration(to: .now)
            #expect(elapsed < .seconds(2), "terminate took \(elapsed)")
            for report in reports {
                guard case .exited = report.outcome else {
                    Issue.record("\(report.gatewayID) was not a clean exit: \(report.outcome)")
                    continue
                }
            }
            for _ in 0..<4 { #expect(try await queue.get(timeout: .seconds(2)).1 == "end") }
            #expect(await waitUntilGone(pids))
        }

        @Test func terminateKillsWorkersThatIgnoreTheExitMessage() async throws {
            let group = try await Group(Array(repeating: testWorkerSpec(), count: 2))
            let pids = group.gateways.compactMap(\.pid)
            // A stopped process cannot answer TERMINATE: the kill after the timeout must follow.
            kill(pids[0], SIGSTOP)
            let mch = try group.remoteExec("wait-release")
            let queue = try mch.makeReceiveQueue(endmarker: nil)
            let started = ContinuousClock.now
            let reports = await group.terminate(timeout: .milliseconds(300))
            #expect(started.duration(to: .now) < .seconds(3))
            #expect(reports[0].outcome == .killed(.signaled(SIGKILL)))
            if case .exited = reports[1].outcome {} else { Issue.record("gw1: \(reports[1].outcome)") }
            for _ in 0..<2 { #expect(try await queue.get(timeout: .seconds(2)).1 == .none) }
            #expect(await waitUntilGone(pids))
        }

        @Test(arguments: GatewayKind.allCases) func aWorkerKilledMidTaskEndsItsChannelsWithTheSignalAndTheRestKeepsWorking(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let doomed = try group[0].remoteExec("pid-then-sleep")
                let other = try group[0].remoteExec("wait-release")
                let survivor = try group[1].remoteExec("wait-release")
                let pid = try #require(try await doomed.receive(timeout: .seconds(10)).intValue)
                let queue = try MultiChannel([other]).makeReceiveQueue(endmarker: "ended")
                let killedAt = ContinuousClock.now
                kill(Int32(pid), SIGKILL)
                // A dead worker is the end of the channel (execnet's EOFError), carrying the cause.
                do {
                    _ = try await doomed.receive(timeout: .seconds(5))
                    Issue.record("expected endOfChannel")
                } catch let error as ExecnetError {
                    #expect(killedAt.duration(to: .now) < .seconds(1))
                    #expect(error.code == .endOfChannel)
                    #expect(error.gatewayID == "gw0")
                    #expect(error.peerEnd?.exit == .signaled(SIGKILL))
                    #expect(error.description.contains("SIGKILL"))
                }
                // Every later receive and waitClose reports the same end and cause.
                do {
                    try await doomed.waitClose(timeout: .seconds(5))
                    Issue.record("expected endOfChannel")
                } catch let error as ExecnetError {
                    #expect(error.code == .endOfChannel)
                    #expect(error.peerEnd?.exit == .signaled(SIGKILL))
                }
                #expect(try await queue.get(timeout: .seconds(1)).1 == "ended")
                #expect(group[0].exitStatus == .signaled(SIGKILL))
                #expect(group.contains("gw0"))
                try await survivor.send("still here")
                #expect(try await survivor.receive(timeout: .seconds(10)) == "still here")
                await expectExecnetError(.invalidState) { try group[0].remoteExec("echo") }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aWorkerThatExitsOnItsOwnReportsItsExitCode(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("exit", 7)
                do {
                    _ = try await channel.receive(timeout: .seconds(5))
                    Issue.record("expected endOfChannel")
                } catch let error as ExecnetError {
                    #expect(error.code == .endOfChannel)
                    #expect(error.peerEnd?.exit == .exited(7))
                }
                #expect(await group[0].join(timeout: .seconds(5)) == .exited(7))
            }
        }

        @Test(arguments: GatewayKind.allCases) func multiChannelWaitCloseRethrowsTheFirstRemoteError(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let mch = MultiChannel([try group[0].remoteExec("send", 1), try group[1].remoteExec("send-then-throw")])
                do {
                    try await mch.waitClose(timeout: .seconds(10))
                    Issue.record("expected RemoteError")
                } catch let error as RemoteError {
                    #expect(error.text.contains("boom after 42"))
                }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aCancelledQueueGetConsumesNothing(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let mch = try group.remoteExec("wait-release")
                let queue = try mch.makeReceiveQueue()
                let waiting = Task { try await queue.get() }
                #expect(try await eventually { queue.waiterCount == 1 })
                waiting.cancel()
                await #expect(throws: CancellationError.self) { try await waiting.value }
                try await mch.sendEach("x")
                #expect(try await queue.get(timeout: .seconds(10)).1 == "x")
            }
        }

        @Test func aKilledClientTakesItsWorkersWithItAndLeavesNoStaleDirectory() async throws {
            let base = ClientRuntime.baseDirectory()
            // Reads the client's first line on a thread of its own.
            @Sendable func spawnClient() throws -> (pid: Int32, pids: [Int32]) {
                let worker = try WorkerProcess.spawn(
                    executable: "\(buildDirectory())/ExecnetTestClient", arguments: [],
                    environment: WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") })
                defer { close(worker.pidfd); close(worker.stderr) }
                var line: [UInt8] = []
                var byte: UInt8 = 0
                var pfd = pollfd(fd: worker.stdout, events: Int16(POLLIN), revents: 0)
                let deadline = ContinuousClock.now.advanced(by: .seconds(20))
                while ContinuousClock.now < deadline {
                    if poll(&pfd, 1, 100) <= 0 { continue }
                    let count = read(worker.stdout, &byte, 1)
                    if count <= 0 { break }
                    if byte == 10 { break }
                    line.append(byte)
                }
                close(worker.stdout)
                let words = String(decoding: line, as: UTF8.self).split(separator: " ")
                guard words.first == "READY" else { return (worker.pid, []) }
                return (worker.pid, words.dropFirst().compactMap { Int32($0) })
            }
            let first = try await offPool { try spawnClient() }
            #expect(first.pids.count == 2)
            #expect(first.pids.allSatisfy(processExists))
            kill(first.pid, SIGKILL)
            try await reap(first.pid)
            #expect(await waitUntilGone(first.pids, timeout: .seconds(2)))
            // The killed client's hub directory is stale until the next client starts.
            let second = try await offPool { try spawnClient() }
            #expect(second.pids.count == 2)
            #expect(access("\(base)/", F_OK) == 0)
            var stale = false
            if let dir = opendir(base) {
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if name.hasPrefix("\(first.pid)-") { stale = true }
                }
                closedir(dir)
            }
            #expect(!stale, "the killed client's directory was not cleaned up")
            kill(second.pid, SIGTERM)
            try await reap(second.pid)
            #expect(await waitUntilGone(second.pids, timeout: .seconds(2)))
        }

        @Test func theTaskserverReturnsEveryResultExactlyOnce() async throws {
            let server = try WorkerProcess.spawn(
                executable: "\(buildDirectory())/taskserver", arguments: ["--tasks", "40", "--max-sleep", "0.05"],
                environment: WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") })
            defer { close(server.pidfd); close(server.stderr) }
            let output = try await readToEnd(server.stdout, within: .seconds(60))
            let status = try await reap(server.pid)
            let text = String(decoding: output, as: UTF8.self)
            var results: [Int] = []
            var workerPids: Set<String> = []
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count == 3, words[1] == "returned", let value = Int(words[2]) { results.append(value) }
                if words.first == "terminated" { workerPids.insert(String(words[1])) }
            }
            #expect(results.sorted() == (0..<40).map { $0 * 10 })
            #expect(workerPids.count == 4)
            #expect(text.contains("results: 40 of 40"))
            #expect(status == 0)
        }
    }
}
