// Typed tasks and group.map against real worker processes: round trips of Codable values, typed
// remote errors, cancellation reaching the worker's Task, and a map that loses nothing and reports
// nothing twice when workers are SIGKILLed. The task types are the test worker's own (ExecnetTestTasks).

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import ExecnetTestTasks
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Tasks only a client declares

/// The same task, with no error retryable.
enum FlakyStrict: TypedTask {
    typealias Input = CrashyInput
    typealias Output = Int
    static let name = "typed-flaky"
}

enum MissingTask: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-no-such-task"
}

/// Whether `value` is the typed-task reply `(kind, id, ...)`.
func isReply(_ value: Value, _ kind: String, _ id: Int64) -> Bool {
    if case .tuple(let parts) = value, parts.count >= 2, parts[0] == .string(kind), parts[1] == .int(id) { return true }
    return false
}

extension AsyncSequence {
    /// Every element, in order.
    func collectResults() async throws -> [Element] {
        var all: [Element] = []
        for try await element in self { all.append(element) }
        return all
    }
}

/// A counter shared by reference.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// The integers 0..<count as an async sequence that counts how many were pulled.
struct CountingInputs: AsyncSequence, Sendable {
    let count: Int
    let pulled = SharedCounter()

    struct AsyncIterator: AsyncIteratorProtocol {
        let count: Int
        let pulled: SharedCounter
        mutating func next() async -> Int? {
            let index = pulled.value.load(ordering: .relaxed)
            guard index < count else { return nil }
            pulled.value.add(1, ordering: .relaxed)
            return index
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(count: count, pulled: pulled) }
}

/// A path for a crash-once marker file that does not exist yet.
func freshMarkerPath(_ label: String) -> String {
    let path = "/tmp/execnet-typed-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))"
    unlink(path)
    return path
}

extension ProcessTests {
    @Suite struct TypedTaskTests {
        // MARK: gateway.call

        @Test(arguments: GatewayKind.allCases) func squareAndManyConcurrentCallsOnOneChannel(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                #expect(try await gateway.call(Square.self, 3) == 9)
                let results = try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
                    for number in 0..<200 {
                        tasks.addTask { (number, try await gateway.call(Square.self, number)) }
                    }
                    var results: [Int: Int] = [:]
                    for try await (number, square) in tasks { results[number] = square }
                    return results
                }
                #expect(results.count == 200)
                #expect(results.allSatisfy { $0.value == $0.key * $0.key })
                // One persistent channel served every call.
                let status = try await gateway.remoteStatus()
                #expect(status.channelCount == 1)
            }
        }

        @Test(arguments: GatewayKind.allCases) func nestedCodableValuesRoundTrip(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let inner = Record.Inner(label: "ünïcode ✓", tags: ["a", "", "c"], weight: nil)
                let records = [
                    Record(id: 1, name: nil, shape: .none, inner: inner, children: [], timestamp: 0,
                           flags: [:], samples: []),
                    Record(id: -7, name: "x", shape: .circle(radius: 2.5),
                           inner: Record.Inner(label: "l", tags: [], weight: 0.125),
                           children: [inner, Record.Inner(label: "k", tags: ["t"], weight: -1e300)],
                           timestamp: 1_764_766_800.123, flags: ["on": true, "off": false],
                           samples: Array(-50_000..<50_000)),
                    Record(id: Int.max, name: "", shape: .rectangle(width: 3, height: Int.min),
                           inner: inner, children: Array(repeating: inner, count: 1000),
                           timestamp: -1.5, flags: ["": true], samples: [Int.min, 0, Int.max]),
                ]
                for record in records {
                    let back = try await group[0].call(EchoRecord.self, record)
                    #expect(back == record)
                }
            }
        }

        @Test(arguments: GatewayKind.allCases) func remoteThrowArrivesAsTypedErrorAndChannelStaysUsable(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                do {
                    _ = try await group[0].call(FailWith.self, "the disk is on fire")
                    Issue.record("expected a RemoteTaskError")
                } catch let error as RemoteTaskError {
                    #expect(error.typeName.hasSuffix("TaskFailure"))
                    #expect(error.message == "the disk is on fire")
                    #expect(error.taskName == FailWith.name)
                    #expect(error.gatewayID == group[0].id)
                }
                #expect(try await group[0].call(Square.self, 12) == 144)
            }
        }

        @Test func unknownTypedTaskFailsWithATypedErrorNamingTheTask() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let error = await #expect(throws: UnknownTaskError.self) { _ = try await group[0].call(MissingTask.self, 1) }
                #expect(error?.taskName == MissingTask.name)
                #expect(error?.gatewayID == group[0].id)
                let square = try await group[0].call(Square.self, 2)
                #expect(square == 4)
            }
        }

        @Test(arguments: GatewayKind.allCases) func cancellingTheCallerCancelsTheWorkersTask(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let call = Task { try await gateway.call(Hang.self, 1) }
                let started = try await gateway.call(HangStats.self, HangCounters(started: 1, cancelled: 0))
                #expect(started.started == 1)
                call.cancel()
                await #expect(throws: CancellationError.self) { _ = try await call.value }
                let after = try await gateway.call(HangStats.self, HangCounters(started: 1, cancelled: 1))
                #expect(after == HangCounters(started: 1, cancelled: 1))
            }
        }

        @Test func aWorkerThatDiesFailsItsCallsWithALostWorkerErrorNotATaskError() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                do {
                    _ = try await group[0].call(Crashy.self, CrashyInput(value: -1, delayMilliseconds: 0))
                    Issue.record("expected the call to fail")
                } catch {
                    #expect(!(error is RemoteTaskError))
                    #expect((error as? ExecnetError)?.peerEnd?.exit == .signaled(SIGKILL))
                }
            }
        }

        @Test func malformedMessagesOnATypedChannelGetErrorRepliesAndCrashNothing() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let channel = try group[0].remoteExec(Square.name)
                try await channel.send("garbage")
                try await channel.send(.tuple(["call", "not-an-id", 3]))
                try await channel.send(.tuple(["call", 5, "not an int"]))
                try await channel.send(.tuple(["bogus", 6]))
                try await channel.send(.tuple(["call", 7, 4]))
                var replies: [Value] = []
                for _ in 0..<3 { replies.append(try await channel.receive(timeout: .seconds(10))) }
                #expect(replies.contains { isReply($0, "err", 5) })
                #expect(replies.contains { isReply($0, "err", 6) })
                #expect(replies.contains { $0 == .tuple(["ok", 7, 16]) })
                try channel.close()
                #expect(try await group[0].call(Square.self, 5) == 25)
            }
        }

        // MARK: group.map

        @Test(arguments: GatewayKind.allCases) func mapYieldsEveryResultOnceInOrderOrAsCompleted(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                var indices: [Int] = []
                for try await item in group.map(Square.self, 0..<300, inFlightPerGateway: 3, ordered: true) {
                    indices.append(item.index)
                    #expect(try item.get() == item.index * item.index)
                    #expect(item.attempts == 1)
                }
                #expect(indices == Array(0..<300))

                var seen: [Int: Int] = [:]
                for try await item in group.map(Square.self, 0..<300, inFlightPerGateway: 5) {
                    seen[item.index, default: 0] += 1
                    #expect(try item.get() == item.index * item.index)
                }
                #expect(seen.count == 300 && seen.values.allSatisfy { $0 == 1 })

                let collected = try await group.map(Square.self, Array(0..<50)).collect()
                #expect(collected == (0..<50).map { $0 * $0 })
            }
        }

        @Test func mapTakesInputsLazilyFromAnAsyncSequence() async throws {
            try await withTestGroup(2, kind: .popen) { group in
                let inputs = CountingInputs(count: 1000)
                var iterator = group.map(Square.self, inputs, inFlightPerGateway: 2).makeAsyncIterator()
                var count = 0
                var mostPulledAhead = 0
                while let item = try await iterator.next() {
                    #expect(try item.get() == item.index * item.index)
                    count += 1
                    mostPulledAhead = max(mostPulledAhead, inputs.pulled.value.load(ordering: .relaxed) - count)
                }
                #expect(count == 1000)
                #expect(inputs.pulled.value.load(ordering: .relaxed) == 1000)
                // The window is 2 gateways x 2 in flight x 4; the map never ran further ahead.
                #expect(mostPulledAhead <= 16)
            }
        }

        @Test func mapCollectThrowsTheFirstTaskFailure() async throws {
            try await withTestGroup(2, kind: .popen) { group in
                do {
                    _ = try await group.map(FailWith.self, ["a", "b"]).collect()
                    Issue.record("expected a failure")
                } catch let failure as MapFailure {
                    #expect(failure.causes.count == 1)
                    #expect(failure.finalCause is RemoteTaskError)
                }
                #expect(try await group.map(Square.self, [7]).collect() == [49])
            }
        }

        @Test(arguments: GatewayKind.allCases) func mapRequeuesTheInFlightInputsOfAWorkerThatCrashed(kind: GatewayKind) async throws {
            try await withTestGroup(3, kind: kind) { group in
                let marker = freshMarkerPath("once")
                defer { unlink(marker) }
                let inputs = (0..<300).map {
                    CrashyInput(value: $0, crashOnceMarker: $0 == 100 ? marker : nil, delayMilliseconds: 1)
                }
                var seen: [Int: Int] = [:]
                var attempts: [Int: Int] = [:]
                for try await item in group.map(Crashy.self, inputs, inFlightPerGateway: 4) {
                    seen[item.index, default: 0] += 1
                    attempts[item.index] = item.attempts
                    #expect(try item.get() == item.index * 2)
                }
                #expect(seen.count == 300)
                #expect(seen.values.allSatisfy { $0 == 1 })
                #expect(attempts[100] == 2)
                #expect(attempts.values.allSatisfy { $0 <= 2 })
                #expect(group.gateways.filter { !$0.isAlive }.count <= 1)
            }
        }

        @Test func mapOf10000InputsSurvivesExternalSigkillsOfTwoWorkers() async throws {
            try await withTestGroup(4, kind: .popen) { group in
                let inputs = (0..<10_000).map { CrashyInput(value: $0, delayMilliseconds: 0) }
                var seen: [Int: Int] = [:]
                var retried = 0
                for try await item in group.map(Crashy.self, inputs, inFlightPerGateway: 4) {
                    seen[item.index, default: 0] += 1
                    if item.attempts > 1 { retried += 1 }
                    #expect(try item.get() == item.index * 2)
                    if seen.count == 2000 { group[1].kill(signal: SIGKILL) }
                    if seen.count == 6000 { group[3].kill(signal: SIGKILL) }
                }
                #expect(seen.count == 10_000)
                #expect(seen.values.allSatisfy { $0 == 1 })
                // At most the calls in flight on the two killed workers ran again.
                #expect(retried <= 8)
                #expect(await group[1].join(timeout: .seconds(10)) == .signaled(SIGKILL))
                #expect(await group[3].join(timeout: .seconds(10)) == .signaled(SIGKILL))
            }
        }

        @Test func aPoisonInputFailsWithOneCausePerAttemptAfterTheLimit() async throws {
            try await withTestGroup(4, kind: .popen) { group in
                let inputs = (0..<100).map { CrashyInput(value: $0 == 10 ? -1 : $0, delayMilliseconds: 0) }
                var seen: [Int: MapResult<Int>] = [:]
                for try await item in group.map(Crashy.self, inputs, inFlightPerGateway: 2, maxAttempts: 2) {
                    #expect(seen[item.index] == nil)
                    seen[item.index] = item
                }
                #expect(seen.count == 100)
                for (index, item) in seen where index != 10 {
                    #expect(try item.get() == index * 2)
                }
                let poison = try #require(seen[10])
                #expect(poison.attempts == 2)
                guard case .failure(let failure) = poison.result else {
                    Issue.record("the poison input succeeded")
                    return
                }
                #expect(failure.causes.count == 2)
                #expect(failure.causes.allSatisfy { ($0 as? ExecnetError)?.peerEnd?.exit == .signaled(SIGKILL) })
                // The poison killed exactly two workers; the other two did the rest.
                #expect(group.gateways.filter { !$0.isAlive }.count == 2)
            }
        }

        @Test func whenNoGatewayIsLeftEveryRemainingInputStillGetsExactlyOneFailure() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let inputs = (0..<50).map { CrashyInput(value: $0 == 5 ? -1 : $0, delayMilliseconds: 0) }
                var seen: [Int: MapResult<Int>] = [:]
                for try await item in group.map(Crashy.self, inputs, inFlightPerGateway: 1, ordered: true) {
                    #expect(seen[item.index] == nil)
                    seen[item.index] = item
                }
                #expect(seen.count == 50)
                for index in 0..<5 { #expect(try seen[index]?.get() == index * 2) }
                let poison = try #require(seen[5])
                guard case .failure(let failure) = poison.result else {
                    Issue.record("the poison input succeeded")
                    return
                }
                #expect((failure.causes.first as? ExecnetError)?.code == .endOfChannel)
                #expect(failure.causes.last is NoGatewayLeftError)
                for index in 6..<50 {
                    guard case .failure(let failure)? = seen[index]?.result else {
                        Issue.record("input \(index) did not fail")
                        continue
                    }
                    #expect(failure.causes.count == 1 && failure.causes[0] is NoGatewayLeftError)
                    #expect(seen[index]?.attempts == 0)
                }
            }
        }

        @Test func orderedResultsStayInOrderAcrossARetry() async throws {
            try await withTestGroup(3, kind: .popen) { group in
                let marker = freshMarkerPath("ordered")
                defer { unlink(marker) }
                let inputs = (0..<200).map {
                    CrashyInput(value: $0, crashOnceMarker: $0 == 20 ? marker : nil, delayMilliseconds: 1)
                }
                var indices: [Int] = []
                for try await item in group.map(Crashy.self, inputs, inFlightPerGateway: 3, ordered: true) {
                    indices.append(item.index)
                    #expect(try item.get() == item.index * 2)
                    if item.index == 20 { #expect(item.attempts == 2) }
                }
                #expect(indices == Array(0..<200))
            }
        }

        @Test func anInputSequenceThatThrowsEndsTheMapAfterTheInputsTakenBefore() async throws {
            struct InputsBroke: Error {}
            try await withTestGroup(2, kind: .popen) { group in
                let (stream, continuation) = AsyncThrowingStream.makeStream(of: Int.self)
                for number in 0..<10 { continuation.yield(number) }
                continuation.finish(throwing: InputsBroke())
                var indices: Set<Int> = []
                do {
                    for try await item in group.map(Square.self, stream) {
                        indices.insert(item.index)
                        #expect(try item.get() == item.index * item.index)
                    }
                    Issue.record("expected the input error")
                } catch is InputsBroke {}
                #expect(indices == Set(0..<10))
            }
        }

        @Test func errorsTheTaskTypeDeclaresRetryableAreRetriedOthersAreFinal() async throws {
            try await withTestGroup(2, kind: .popen) { group in
                let marker = freshMarkerPath("flaky")
                defer { unlink(marker) }
                let inputs = (0..<30).map { CrashyInput(value: $0, crashOnceMarker: $0 == 7 ? marker : nil, delayMilliseconds: 0) }
                var results: [Int: MapResult<Int>] = [:]
                for try await item in group.map(Flaky.self, inputs) { results[item.index] = item }
                #expect(results.count == 30)
                #expect(results.values.allSatisfy { (try? $0.get()) == $0.index })
                #expect(results[7]?.attempts == 2)
                #expect(group.gateways.allSatisfy { $0.isAlive })

                let strictMarker = freshMarkerPath("strict")
                defer { unlink(strictMarker) }
                let strictInputs = [CrashyInput(value: 1, crashOnceMarker: strictMarker, delayMilliseconds: 0)]
                var strict: [MapResult<Int>] = []
                for try await item in group.map(FlakyStrict.self, strictInputs) { strict.append(item) }
                #expect(strict.count == 1 && strict.first?.attempts == 1)
                guard case .failure(let failure)? = strict.first?.result else {
                    Issue.record("a non-retryable error was retried")
                    return
                }
                #expect((failure.finalCause as? RemoteTaskError)?.typeName.hasSuffix("Transient") == true)
            }
        }

        @Test func aCallPastTheTimeLimitKillsItsWorkerAndCountsAsAnAttempt() async throws {
            try await withTestGroup(3, kind: .popen) { group in
                var results: [MapResult<Int>] = []
                for try await item in group.map(Hang.self, [1], maxAttempts: 2, timeLimit: .milliseconds(300)) {
                    results.append(item)
                }
                #expect(results.count == 1)
                guard case .failure(let failure)? = results.first?.result else {
                    Issue.record("a hung call succeeded")
                    return
                }
                #expect(failure.causes.count == 2)
                #expect(failure.causes.allSatisfy { $0 is MapTimeLimitError })
                // Each attempt killed the worker it ran on: two different gateways, both SIGKILLed.
                let killed = Set(failure.causes.compactMap { ($0 as? MapTimeLimitError)?.gatewayID })
                #expect(killed.count == 2)
                for id in killed {
                    #expect(await group[id]?.join(timeout: .seconds(10)) == .signaled(SIGKILL))
                }
                #expect(try await group.map(Square.self, 0..<10, timeLimit: .seconds(30)).collect() == (0..<10).map { $0 * $0 })
            }
        }

        @Test func aLostGatewayIsReplacedUpToTheLimit() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let marker = freshMarkerPath("replace")
                defer { unlink(marker) }
                let inputs = (0..<100).map {
                    CrashyInput(value: $0, crashOnceMarker: $0 == 30 ? marker : nil, delayMilliseconds: 0)
                }
                let map = group.map(Crashy.self, inputs, inFlightPerGateway: 2, replaceDeadGateways: 1)
                var seen: [Int: Int] = [:]
                for try await item in map {
                    seen[item.index, default: 0] += 1
                    #expect(try item.get() == item.index * 2)
                }
                #expect(seen.count == 100 && seen.values.allSatisfy { $0 == 1 })
                #expect(group.count == 2)
                #expect(await group[0].join(timeout: .seconds(10)) == .signaled(SIGKILL))
                #expect(group[1].isAlive)
                #expect(map.progress.current.replaced == 1)

                // The limit holds: with no replacement left, a second death leaves no gateway.
                let poison = [CrashyInput(value: -1, delayMilliseconds: 0), CrashyInput(value: 2, delayMilliseconds: 0)]
                let results = try await group.map(Crashy.self, poison, inFlightPerGateway: 1, ordered: true,
                                                  maxAttempts: 1, replaceDeadGateways: 0).collectResults()
                #expect(results.count == 2)
                if case .failure(let failure)? = results.last?.result {
                    #expect(failure.finalCause is NoGatewayLeftError)
                } else {
                    Issue.record("the input after the poison ran although no gateway was left")
                }
                #expect(group.count == 2)
            }
        }

        @Test func progressSnapshotsCountDoneInFlightAndRetried() async throws {
            try await withTestGroup(3, kind: .popen) { group in
                let marker = freshMarkerPath("progress")
                defer { unlink(marker) }
                let inputs = (0..<200).map {
                    CrashyInput(value: $0, crashOnceMarker: $0 == 50 ? marker : nil, delayMilliseconds: 1)
                }
                let map = group.map(Crashy.self, inputs, inFlightPerGateway: 2)
                let updates = map.progress.updates()
                let watcher = Task {
                    var snapshots: [MapProgressSnapshot] = []
                    for await snapshot in updates { snapshots.append(snapshot) }
                    return snapshots
                }
                var results = 0
                for try await item in map {
                    _ = try item.get()
                    results += 1
                }
                let snapshots = await watcher.value
                let last = try #require(snapshots.last)
                #expect(results == 200)
                #expect(last.isFinished)
                #expect(last.succeeded == 200 && last.failed == 0 && last.inFlight == 0)
                #expect(last.retried >= 1)
                #expect(snapshots.allSatisfy { $0.inFlight <= 6 })
                #expect(zip(snapshots, snapshots.dropFirst()).allSatisfy { $0.done <= $1.done || $1.done == 0 })
                #expect(map.progress.current == last)
            }
        }

        @Test func theTaskserverMapExampleReturnsEveryResultExactlyOnce() async throws {
            let server = try WorkerProcess.spawn(
                executable: "\(buildDirectory())/TaskServerMap", arguments: ["--tasks", "40", "--max-sleep", "0.05"],
                environment: WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") })
            defer { close(server.pidfd); close(server.stderr) }
            let output = try await readToEnd(server.stdout, within: .seconds(60))
            let status = try await reap(server.pid)
            let text = String(decoding: output, as: UTF8.self)
            var tasks: [Int] = []
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count == 6, words[1] == "returned", words[3] == "for", let task = Int(words[5]) {
                    #expect(words[2] == "success(\(task * 10))")
                    tasks.append(task)
                }
            }
            #expect(tasks.sorted() == Array(0..<40))
            #expect(text.contains("results: 40 of 40; sorted: complete; failures: 0"))
            #expect(status == 0)
        }

        @Test func cancellingTheConsumerCancelsTheMapAndLeavesTheGroupUsable() async throws {
            try await withTestGroup(2, kind: .popen) { group in
                let map = group.map(Hang.self, 0..<100, inFlightPerGateway: 2)
                let consumer = Task {
                    for try await _ in map {}
                }
                for gateway in group.gateways {
                    let stats = try await gateway.call(HangStats.self, HangCounters(started: 2, cancelled: 0))
                    #expect(stats.started == 2)
                }
                consumer.cancel()
                await #expect(throws: CancellationError.self) { try await consumer.value }
                // Nothing of the map is left running here: its lanes ended (the map finished) and
                // it counts nothing in flight; no gateway was lost or added.
                #expect(try await eventually { map.progress.current.isFinished })
                #expect(map.progress.current.inFlight == 0)
                #expect(map.progress.current.done == 0)
                #expect(group.count == 2 && group.gateways.allSatisfy(\.isAlive))
                for gateway in group.gateways {
                    let stats = try await gateway.call(HangStats.self, HangCounters(started: 2, cancelled: 2))
                    #expect(stats == HangCounters(started: 2, cancelled: 2))
                    #expect(try await gateway.call(Square.self, 6) == 36)
                }
                #expect(try await group.map(Square.self, 0..<20).collect() == (0..<20).map { $0 * $0 })
            }
        }
    }
}
