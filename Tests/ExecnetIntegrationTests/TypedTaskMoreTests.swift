// Typed tasks, second part: unknown task names in a map, chunked maps, streaming typed tasks, and a
// chaos map where workers kill themselves or hang while thousands of inputs run. Real worker
// processes (Sources/ExecnetTestWorker declares the same task types).

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import ExecnetTestTasks
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The task types are ExecnetTestTasks' (shared with the test worker); this one no worker has.

enum MissingStream: StreamingTypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-no-such-stream"
}

extension ProcessTests {
    @Suite struct TypedTaskMoreTests {
        // MARK: typed tasks on the worker's I/O thread

        @Test func typedTasksOnTheWorkersIOThreadAnswerAndAreCancelledOneByOne() async throws {
            try await withTestGroup(2, kind: .popen) { group in
                let gateway = group[0]
                #expect(try await gateway.call(SquareOnIO.self, 7) == 49)
                let squares = try await group.map(SquareOnIO.self, 0..<500, chunkSize: 3).collect()
                #expect(squares == (0..<500).map { $0 * $0 })
                // Two hung calls; cancelling one cancels only its task, the other still runs.
                let first = Task { try await gateway.call(HangOnIO.self, 1) }
                let second = Task { try await gateway.call(HangOnIO.self, 2) }
                #expect(try await gateway.call(HangStats.self, HangCounters(started: 2, cancelled: 0)).started == 2)
                first.cancel()
                await #expect(throws: CancellationError.self) { _ = try await first.value }
                #expect(try await gateway.call(HangStats.self, HangCounters(started: 2, cancelled: 1))
                        == HangCounters(started: 2, cancelled: 1))
                #expect(try await gateway.call(SquareOnIO.self, 3) == 9)
                second.cancel()
                await #expect(throws: CancellationError.self) { _ = try await second.value }
                #expect(try await gateway.call(HangStats.self, HangCounters(started: 2, cancelled: 2))
                        == HangCounters(started: 2, cancelled: 2))
            }
        }

        // MARK: unknown task names

        @Test func anUnknownTaskFailsEachInputOnceWithATypedErrorAndLosesNoWorker() async throws {
            try await withTestGroup(2, kind: .popen) { group in
                for chunkSize in [1, 4] {
                    let map = group.map(MissingTask.self, 0..<20, inFlightPerGateway: 2, chunkSize: chunkSize)
                    var seen: [Int: MapResult<Int>] = [:]
                    for try await item in map {
                        #expect(seen[item.index] == nil)
                        seen[item.index] = item
                    }
                    #expect(seen.count == 20)
                    for item in seen.values {
                        #expect(item.attempts == 1)
                        guard case .failure(let failure) = item.result else {
                            Issue.record("input \(item.index) of an unknown task succeeded")
                            continue
                        }
                        #expect(failure.causes.count == 1)
                        let cause = failure.finalCause as? UnknownTaskError
                        #expect(cause?.taskName == MissingTask.name)
                        #expect(cause?.remoteText.contains("typed-square") == true)
                    }
                    #expect(map.progress.current.retried == 0)
                    #expect(group.gateways.allSatisfy { $0.isAlive })
                }
                #expect(try await group.map(Square.self, 0..<10).collect() == (0..<10).map { $0 * $0 })
            }
        }

        // MARK: chunks

        @Test(arguments: GatewayKind.allCases) func aChunkedMapMakesOneRemoteCallPerChunkAndOneResultPerInput(kind: GatewayKind) async throws {
            try await withTestGroup(2, kind: kind) { group in
                var byCall: [String: [Int]] = [:]
                var indices: [Int] = []
                for try await item in group.map(CallID.self, Array(0..<100), inFlightPerGateway: 2, chunkSize: 10, ordered: true) {
                    indices.append(item.index)
                    byCall["\(item.gatewayID ?? "?")/\(try item.get())", default: []].append(item.index)
                }
                #expect(indices == Array(0..<100))
                // 100 inputs in chunks of 10: ten remote calls, each carrying ten consecutive inputs.
                #expect(byCall.count == 10)
                for members in byCall.values {
                    #expect(members.count == 10)
                    #expect(members == Array(members[0]..<(members[0] + 10)))
                }
                let squares = try await group.map(Square.self, Array(0..<1000), chunkSize: 32).collect()
                #expect(squares == (0..<1000).map { $0 * $0 })
            }
        }

        @Test func aTaskErrorInAChunkFailsOnlyItsOwnInput() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let results = try await group.map(FailWith.self, ["a", "b", "c"], chunkSize: 3, ordered: true).collectResults()
                #expect(results.map(\.index) == [0, 1, 2])
                for (item, text) in zip(results, ["a", "b", "c"]) {
                    guard case .failure(let failure) = item.result else {
                        Issue.record("input \(item.index) succeeded")
                        continue
                    }
                    #expect((failure.finalCause as? RemoteTaskError)?.message == text)
                    #expect(item.attempts == 1)
                }
                #expect(group[0].isAlive)
            }
        }

        @Test func aWorkerDyingMidChunkRequeuesTheWholeChunkAndLosesNothing() async throws {
            try await withTestGroup(3, kind: .popen) { group in
                let marker = freshMarkerPath("chunk")
                defer { unlink(marker) }
                let inputs = (0..<400).map {
                    CrashyInput(value: $0, crashOnceMarker: $0 == 130 ? marker : nil, delayMilliseconds: 0)
                }
                var seen: [Int: Int] = [:]
                var attempts: [Int: Int] = [:]
                for try await item in group.map(Crashy.self, inputs, inFlightPerGateway: 2, chunkSize: 8) {
                    seen[item.index, default: 0] += 1
                    attempts[item.index] = item.attempts
                    #expect(try item.get() == item.index * 2)
                }
                #expect(seen.count == 400 && seen.values.allSatisfy { $0 == 1 })
                #expect(attempts[130] == 2)
                #expect(attempts.values.allSatisfy { $0 <= 2 })
                #expect(group.gateways.filter { !$0.isAlive }.count == 1)
            }
        }

        // MARK: streaming typed tasks

        @Test(arguments: GatewayKind.allCases) func aStreamingTaskYieldsTypedOutputsInOrder(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let ticks = try await group[0].stream(Countdown.self, CountdownInput(from: 50)).collectResults()
                #expect(ticks == stride(from: 50, to: 0, by: -1).map { Tick(n: $0, label: String(repeating: "*", count: $0 % 7)) })
                // The AsyncSequence form, with more outputs than one flow-control window.
                let numbers = try await group[0].stream(Numbers.self, 20_000).collectResults()
                #expect(numbers == Array(0..<20_000))
                // An empty stream ends at once.
                #expect(try await group[0].stream(Numbers.self, 0).collectResults().isEmpty)
            }
        }

        @Test func aStreamingTaskThatThrowsEndsTheStreamWithATypedErrorAfterItsOutputs() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                var received: [Int] = []
                do {
                    for try await tick in try await group[0].stream(Countdown.self, CountdownInput(from: 10, failAt: 6)) {
                        received.append(tick.n)
                    }
                    Issue.record("expected a RemoteTaskError")
                } catch let error as RemoteTaskError {
                    #expect(error.message == "countdown failed at 6")
                    #expect(error.taskName == Countdown.name)
                }
                #expect(received == [10, 9, 8, 7])
                await #expect(throws: UnknownTaskError.self) {
                    _ = try await group[0].stream(MissingStream.self, 1).collectResults()
                }
                #expect(try await group[0].call(Square.self, 3) == 9)
            }
        }

        @Test(arguments: GatewayKind.allCases) func droppingOrCancellingAStreamCancelsTheWorkersTask(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                // Leaving the loop early drops the stream: its channel closes, the worker's Task is cancelled.
                var seen = 0
                for try await tick in try await gateway.stream(Ticker.self, 1) {
                    #expect(tick == seen)
                    seen += 1
                    if seen == 3 { break }
                }
                let afterBreak = try await gateway.call(TickerStats.self, HangCounters(started: 1, cancelled: 1))
                #expect(afterBreak == HangCounters(started: 1, cancelled: 1))

                // Cancelling the consuming Swift Task.
                let firstTick = AsyncStream.makeStream(of: Void.self)
                let consumer = Task {
                    for try await _ in try await gateway.stream(Ticker.self, 1) { firstTick.continuation.yield() }
                }
                for await _ in firstTick.stream { break }
                consumer.cancel()
                await #expect(throws: CancellationError.self) { try await consumer.value }
                let afterCancel = try await gateway.call(TickerStats.self, HangCounters(started: 2, cancelled: 2))
                #expect(afterCancel == HangCounters(started: 2, cancelled: 2))

                // cancel() on the stream: iteration ends quietly.
                let stream = try await gateway.stream(Ticker.self, 1)
                var iterator = stream.makeAsyncIterator()
                #expect(try await iterator.next() == 0)
                stream.cancel()
                var rest = 0
                while try await iterator.next() != nil { rest += 1 }
                #expect(rest < 1000)
                let afterStop = try await gateway.call(TickerStats.self, HangCounters(started: 3, cancelled: 3))
                #expect(afterStop == HangCounters(started: 3, cancelled: 3))
                #expect(try await gateway.call(Square.self, 4) == 16)
            }
        }

        @Test func aWorkerThatDiesMidStreamEndsItWithALostWorkerError() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let gateway = group[0]
                var received = 0
                do {
                    for try await _ in try await gateway.stream(Ticker.self, 1) {
                        received += 1
                        if received == 5 { gateway.kill(signal: SIGKILL) }
                    }
                    Issue.record("a stream of a killed worker ended normally")
                } catch {
                    #expect(!(error is RemoteTaskError))
                    #expect((error as? ExecnetError)?.peerEnd?.exit == .signaled(SIGKILL))
                }
                #expect(received >= 5)
            }
        }

        // MARK: chaos

        /// 10,000 inputs on 4 gateways; chosen at random (fixed seed): inputs that kill their worker
        /// once, poison inputs that kill every worker they reach, and one that hangs past the time
        /// limit. Lost gateways are replaced. Every input is reported exactly once, the killers that
        /// come back run on a replacement, the repeated killers fail with one cause per attempt.
        @Test func chaosMapReportsEveryInputExactlyOnceWhileWorkersDieAndHang() async throws {
            try await withTestGroup(4, kind: .popen) { group in
                let originals = Set(group.gateways.map(\.id))
                var random = SplitMix64(seed: 13)
                var chosen: [Int] = []
                while chosen.count < 9 {
                    let index = Int(random.next() % 10_000)
                    if !chosen.contains(index) { chosen.append(index) }
                }
                let onceKillers = Set(chosen[0..<6]), poison = Set(chosen[6..<8]), hung = chosen[8]
                var markers: [Int: String] = [:]
                for index in onceKillers { markers[index] = freshMarkerPath("chaos-\(index)") }
                defer { for path in markers.values { unlink(path) } }
                let inputs = (0..<10_000).map { index in
                    CrashyInput(value: poison.contains(index) ? -1 : index, crashOnceMarker: markers[index],
                                delayMilliseconds: 0, hang: index == hung ? true : nil)
                }
                let map = group.map(Crashy.self, inputs, inFlightPerGateway: 4, maxAttempts: 3,
                                    timeLimit: .seconds(6), replaceDeadGateways: 20)
                var seen: [Int: MapResult<Int>] = [:]
                for try await item in map {
                    #expect(seen[item.index] == nil, "input \(item.index) reported twice")
                    seen[item.index] = item
                }
                #expect(seen.count == 10_000)
                for (index, item) in seen where !poison.contains(index) && index != hung {
                    #expect(try item.get() == index * 2)
                }
                // A once-killer runs twice (three times if another killer took its worker first).
                for index in onceKillers { #expect((2...3).contains(seen[index]?.attempts ?? 0)) }
                for index in poison {
                    guard case .failure(let failure)? = seen[index]?.result else {
                        Issue.record("poison input \(index) succeeded")
                        continue
                    }
                    #expect(failure.causes.count == 3)
                    #expect(failure.causes.allSatisfy { ($0 as? ExecnetError)?.peerEnd?.exit == .signaled(SIGKILL) })
                }
                guard case .failure(let hangFailure)? = seen[hung]?.result else {
                    Issue.record("the hung input succeeded")
                    return
                }
                #expect(hangFailure.causes.count == 3 && hangFailure.finalCause is MapTimeLimitError)
                // Deaths: 6 once-killers, 2 poisons three times each, the hung input three times: at
                // most 15 gateways lost (fewer if two killers shared a worker), each replaced; the
                // replacements did part of the work.
                let progress = map.progress.current
                #expect((10...15).contains(progress.replaced))
                #expect(progress.failed == 3 && progress.succeeded == 9_997)
                #expect(group.count == 4 + progress.replaced)
                #expect(seen.values.contains { $0.gatewayID.map { !originals.contains($0) } ?? false })
                #expect(group.gateways.filter(\.isAlive).count == 4)
            }
        }
    }
}

/// A small seeded generator (SplitMix64), so a failing chaos run can be repeated.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
