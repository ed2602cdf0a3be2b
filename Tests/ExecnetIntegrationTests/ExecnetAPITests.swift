// execnet's API as a porter uses it, against real workers (popen and broker): gateway.exit()
// leaving its group, allocate_id and defaultspec, _rinfo(update=True), remoteaddress, the
// client's channel count, Codable arguments, and channel files (makefile) on both sides.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import OrderedCollections
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A Codable argument, as a task receives it (a dict with text keys).
private struct Point: Codable, Equatable {
    var x: Int
    var y: Double
}

extension ProcessTests {
    @Suite struct ExecnetAPITests {
        // MARK: - Gateways and groups

        @Test(arguments: GatewayKind.allCases) func exitTakesTheGatewayOutOfItsGroup(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let leaving = group[0]
                let pid = try #require(leaving.pid)
                leaving.exit()
                // As execnet: the group no longer lists it, at once.
                #expect(group.count == 1)
                #expect(!group.contains(leaving) && !group.contains(leaving.id))
                #expect(group.gateways.map(\.id) == ["gw1"])
                #expect(await leaving.join(timeout: .seconds(10)) != nil)
                #expect(await waitUntilGone([pid]))
                // terminate neither waits for nor reports the gateway that left.
                let reports = await group.terminate(timeout: .seconds(2))
                #expect(reports.map(\.gatewayID) == ["gw1"])
            }
        }

        @Test func aWorkerThatDiesOnItsOwnStaysListedUntilTerminate() async throws {
            try await withTestGroup(2) { group in
                let channel = try group[0].remoteExec("exit", 3)
                await expectRemoteErrorOrEnd { try await channel.receive(timeout: .seconds(10)) }
                #expect(await group[0].join(timeout: .seconds(10)) == .exited(3))
                #expect(group.count == 2 && group[0].exitStatus == .exited(3))
            }
        }

        @Test func allocateIDAndDefaultSpec() async throws {
            let group = try Group()
            #expect(group.defaultSpec == "popen")
            var first = try XSpec("popen")
            var second = try XSpec("popen//hello=world")
            var named = try XSpec("popen//id=mine")
            #expect(group.allocateID(&first) == "gw0" && first.id == "gw0" && first["id"] == "gw0")
            #expect(group.allocateID(&second) == "gw1" && second["hello"] == "world")
            #expect(group.allocateID(&named) == "mine")
            #expect(group.allocateID(&first) == "gw0", "a spec with an id keeps it")

            // makeGateway() without a spec uses defaultSpec, and numbering goes on from gw2.
            group.defaultSpec = testWorkerSpec()
            let gateway = try await group.makeGateway()
            #expect(gateway.id == "gw2")
            #expect(gateway.spec.worker == "\(buildDirectory())/ExecnetTestWorker")
            // A spec naming no type gets the default spec's parts in front.
            let typeless = try await group.makeGateway("id=typeless")
            #expect(typeless.spec.worker == gateway.spec.worker && typeless.id == "typeless")
            await group.terminate(timeout: .seconds(2))

            let brokered = try Group(broker: BrokerBinding(endpoint: "tcp://127.0.0.1:1"))
            #expect(brokered.defaultSpec == "broker=tcp://127.0.0.1:1")
        }

        @Test(arguments: GatewayKind.allCases) func remoteInfoUpdateAsksAgain(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let hello = try #require(gateway.remoteInfo)
                #expect(try await gateway.remoteInfo(update: false) == hello)
                let directory = "/tmp/execnet-rinfo-\(getpid())"
                mkdir(directory, 0o700)
                defer { rmdir(directory) }
                try await gateway.remoteExec("chdir", .string(directory)).waitClose(timeout: .seconds(10))
                // The cache still says what the hello said; an update asks the worker again.
                #expect(try await gateway.remoteInfo(update: false).cwd == hello.cwd)
                let updated = try await gateway.remoteInfo(update: true)
                #expect(updated.cwd == directory)
                #expect(updated.pid == hello.pid && updated.hostname == hello.hostname)
                #expect(gateway.remoteInfo?.cwd == directory)
            }
        }

        @Test(arguments: GatewayKind.allCases) func remoteAddressNamesTheBrokerAndHost(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                switch kind {
                case .popen:
                    #expect(gateway.remoteAddress == nil)
                case .broker:
                    // The agent's SPAWNED report and the worker's hello travel apart: the host name
                    // may follow the start by a moment (bounded wait).
                    let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                    while gateway.remoteAddress?.host == nil, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    let address = try #require(gateway.remoteAddress)
                    #expect(address.broker == gateway.spec.broker)
                    #expect(address.host?.isEmpty == false)
                    #expect("\(address)".hasPrefix(gateway.spec.broker ?? "?"))
                }
            }
        }

        @Test(arguments: GatewayKind.allCases) func channelCountCountsTheClientsChannels(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let before = gateway.channelCount
                let held = (0..<3).map { _ in gateway.newChannel() }
                #expect(gateway.channelCount == before + 3)
                let echo = try gateway.remoteExec("echo")
                #expect(gateway.channelCount == before + 4)
                for channel in held { try channel.close() }
                try echo.close()
                _ = held
            }
        }

        @Test(arguments: GatewayKind.allCases) func codableArgumentsAndSendEach(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                let point = Point(x: 3, y: 0.5)
                let sent = try group[0].remoteExec("send", point, 7, "text", Value(9), [1, 2])
                #expect(try await sent.receive(as: Point.self, timeout: .seconds(10)) == point)
                #expect(try await sent.receive(timeout: .seconds(10)) == 7)
                #expect(try await sent.receive(timeout: .seconds(10)) == "text")
                #expect(try await sent.receive(timeout: .seconds(10)) == 9)
                #expect(try await sent.receive(timeout: .seconds(10)) == .list([1, 2]))

                let keywords: OrderedDictionary<String, any Encodable> = ["where": point, "n": 2]
                let named = try group[1].remoteExec("send-keywords", arguments: [], keywordArguments: keywords)
                let fields = try await named.receive(timeout: .seconds(10))
                #expect(fields["n"] == 2)
                #expect(fields["where"]?["x"] == 3)

                let all = try group.remoteExec("send", point)
                for item in try await all.receiveEach(timeout: .seconds(10)) {
                    #expect(try ValueDecoder().decode(Point.self, from: item) == point)
                }
                let echoes = try group.remoteExec("echo")
                try await echoes.sendEach(point)
                for item in try await echoes.receiveEach(timeout: .seconds(10)) {
                    #expect(try ValueDecoder().decode(Point.self, from: item) == point)
                }
                for channel in echoes.channels { try channel.close() }
            }
        }

        // MARK: - Channel files

        @Test(arguments: GatewayKind.allCases) func aTaskPrintsThroughAWriteFile(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("print-lines", 3)
                let file = channel.makeReadFile()
                #expect(try await file.readline(maxLength: 4) == "line")
                #expect(try await file.readline(maxLength: 40) == " 0\n")
                #expect(try await file.read(5) == "line ")
                #expect(try await file.read(2) == "1\n")
                var rest: [String] = []
                for try await line in file { rest.append(line) }
                #expect(rest == ["line 2\n", "end\n"])
                #expect(try await file.read(10) == "")
                #expect(try await file.readline() == "")
                #expect(!file.isTerminal)
            }
        }

        @Test(arguments: GatewayKind.allCases) func aThreadTaskPrintsThroughAWriteFile(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let file = try group[0].remoteExec("print-lines-thread", 2).makeReadFile(proxyClose: true)
                #expect(try await file.read(-1) == "line 0\nline 1\n")
            }
        }

        @Test(arguments: GatewayKind.allCases) func aTaskReadsWhatTheClientWrites(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let reply = gateway.newChannel()
                let channel = try gateway.remoteExec("read-file", .channel(reply), 4)
                let out = channel.makeWriteFile(proxyClose: true)
                try await out.write("héllo")           // read(4) takes "héll": scalars, as Python counts
                try await out.write(" wor")
                try await out.write("ld\nsecond ")
                var printer = out
                print("line", to: &printer)            // kept until the next write or flush
                try await out.write("third\nno newline")
                try await out.close()                  // proxy close: the task's file ends
                #expect(channel.isClosed)
                let result = try await reply.receive(timeout: .seconds(10))
                #expect(result == .list(["héll", "o world\n", .list(["second line\n", "third\n", "no newline"]), ""]))
                await expectExecnetError(.invalidState) { try await out.write("late") }
            }
        }

        @Test(arguments: GatewayKind.allCases) func aThreadTaskUsesTheBlockingFileAPI(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let reply = gateway.newChannel()
                let channel = try gateway.remoteExec("read-file-thread", .channel(reply), 3)
                let out = channel.makeWriteFile(proxyClose: true)
                try await out.write("abcdef\nsecond\nlast")
                try await out.close()
                #expect(try await reply.receive(timeout: .seconds(10)) == .list(["abc", "def\n", .list(["second\n", "last"])]))
                // The task's write file closed the reply channel (proxy close): the end follows "done".
                let file = reply.makeReadFile()
                #expect(try await file.read(-1) == "done\n")
            }
        }

        @Test(arguments: GatewayKind.allCases) func aTaskPrintsToAChannelTheClientSentIt(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let output = gateway.newChannel()
                let file = output.makeReadFile()
                try await gateway.remoteExec("print-to", .channel(output), "hello world").waitClose(timeout: .seconds(10))
                #expect(try await file.readline() == "hello world\n")
                try output.close()
            }
        }

        @Test func aReadFileRefusesItemsThatAreNotText() async throws {
            try await withTestGroup(1) { group in
                let file = try group[0].remoteExec("send", 1, "after").makeReadFile()
                await expectExecnetError(.protocolViolation) { try await file.read(1) }
                #expect(try await file.read(-1) == "after", "the bad item is consumed, nothing else is lost")
            }
        }

        @Test func aReadFileRaisesTheRemoteError() async throws {
            try await withTestGroup(1) { group in
                let file = try group[0].remoteExec("send-then-throw").makeReadFile()
                await expectExecnetError(.protocolViolation) { try await file.read(1) }   // its 42
                do {
                    _ = try await file.read(-1)
                    Issue.record("expected the task's error")
                } catch let error as RemoteError {
                    #expect(error.text.contains("boom after 42"))
                }
            }
        }
    }
}

/// Expects `body` to throw a ``RemoteError`` or an end of channel (a worker that exited on its own).
private func expectRemoteErrorOrEnd(_ body: () async throws -> Value) async {
    do {
        let value = try await body()
        Issue.record("expected the channel to end, got \(value)")
    } catch is RemoteError {
    } catch let error as ExecnetError where error.code == .endOfChannel {
    } catch {
        Issue.record("unexpected \(error)")
    }
}
