// group.map: a load-balanced map of a typed task over a group's gateways. Each gateway gets a
// number of lanes (calls in flight); lanes take inputs from one shared source (retries first, then
// the input sequence, pulled lazily), and report each input's result exactly once. A lane whose
// call fails for any reason other than the task's own error (the worker died, the channel ended)
// hands its input back for another gateway and stops: its gateway is out of the map.

import DequeModule
import ExecnetCore

/// One input's outcome in a ``TaskMap``.
public struct MapResult<Output: Sendable>: Sendable {
    /// The input's position in the input sequence (from 0).
    public let index: Int
    /// The task's output, or why the input failed for good.
    public let result: Result<Output, MapFailure>
    /// How many times the input was sent to a worker (1 unless workers died while running it; 0 if
    /// no gateway was left to run it).
    public let attempts: Int
    /// The gateway that produced the result (`nil` when no gateway was left to run it).
    public let gatewayID: String?

    /// The output, or the failure thrown.
    public func get() throws(MapFailure) -> Output { try result.get() }
}

/// Why one input of a ``TaskMap`` failed.
///
/// Either the task threw (``RemoteTaskError``, never retried), the input or output did not convert,
/// or the input's workers died `maxAttempts` times (or no gateway was left): then `causes` holds
/// one error per attempt, in order.
public struct MapFailure: Error, Sendable, CustomStringConvertible {
    /// The input's position in the input sequence.
    public let index: Int
    /// The error of each attempt, in order; the last one ended the input.
    public let causes: [any Error]

    /// The error that ended the input.
    public var finalCause: (any Error)? { causes.last }

    public var description: String {
        "input \(index) failed after \(causes.count) attempt(s): " + causes.map { "\($0)" }.joined(separator: "; ")
    }
}

/// The cause recorded when a call ran past the map's time limit (its worker was killed).
public struct MapTimeLimitError: Error, Sendable, CustomStringConvertible {
    /// The gateway whose worker was killed.
    public let gatewayID: String
    /// The time limit.
    public let limit: Duration

    public var description: String { "call on \(gatewayID) ran past the time limit of \(limit); its worker was killed" }
}

/// The error of an input that could not run because every gateway of the map was lost.
public struct NoGatewayLeftError: Error, Sendable, CustomStringConvertible {
    public var description: String { "no gateway of the map is left to run the input" }
}

extension Group {
    /// Runs the typed task `T` over `inputs` on this group's gateways, as an `AsyncSequence` of
    /// one ``MapResult`` per input.
    ///
    /// Inputs are taken lazily, only when a lane is free and fewer than a window of results wait for
    /// the consumer, so a slow consumer holds back the input sequence. Each live gateway runs up to
    /// `inFlightPerGateway` calls at once (pipelining hides the round trip).
    ///
    /// When a worker dies mid-call, its in-flight inputs go back to the queue, once each, and run on
    /// the other gateways; after `maxAttempts` attempts an input fails with one cause per attempt
    /// (a poison input that kills every worker it reaches does not loop). A retried input runs alone
    /// on its gateway, so a second death is charged to it and not to inputs that happened to share
    /// its worker. When no gateway is left, the remaining inputs fail with ``NoGatewayLeftError``. A task's own error
    /// (``RemoteTaskError``) is retried only when the task type declares it retryable
    /// (``TypedTask/isRetryable(_:)``); the gateway then stays in the map. Execution is at-least-once: an input whose worker died
    /// mid-way may have run (partly) before it runs again. Every input gets exactly one result.
    ///
    /// Cancelling the consuming task (or dropping the iterator) cancels the map: queued inputs are
    /// dropped, in-flight calls are cancelled in the workers, and the group stays usable.
    ///
    /// - Parameters:
    ///   - task: The typed task to run.
    ///   - inputs: The inputs, an `AsyncSequence` (see the `Sequence` overload for plain ones).
    ///   - inFlightPerGateway: Calls in flight per gateway (at least 1).
    ///   - chunkSize: Inputs per remote call (at least 1; default 1). A chunk is one message each way;
    ///     the worker runs its inputs one after another and each input still gets its own result. A
    ///     retried input always goes alone.
    ///   - ordered: `true` to yield results in input order, `false` (the default) as they complete.
    ///   - maxAttempts: How many times an input may be sent to a worker (at least 1).
    ///   - timeLimit: How long one remote call (a whole chunk, when chunked) may run; past it the map kills the call's worker (SIGKILL)
    ///     and treats the input as lost with it (``MapTimeLimitError``). `nil`: no limit.
    ///   - replaceDeadGateways: How many lost gateways the map may replace with a new gateway of the
    ///     same spec (added to the group), as xdist's `maxworkerrestart`. 0: none.
    /// - Returns: The results, one per input.
    public func map<T: TypedTask, Inputs: AsyncSequence & Sendable>(
        _ task: T.Type, _ inputs: Inputs, inFlightPerGateway: Int = 4, chunkSize: Int = 1, ordered: Bool = false,
        maxAttempts: Int = 3, timeLimit: Duration? = nil, replaceDeadGateways: Int = 0
    ) -> TaskMap<T, Inputs> where Inputs.Element == T.Input {
        TaskMap(gateways: gateways, inputs: inputs, inFlightPerGateway: Swift.max(1, inFlightPerGateway),
                chunkSize: Swift.max(1, chunkSize), ordered: ordered, maxAttempts: Swift.max(1, maxAttempts), timeLimit: timeLimit,
                replacements: Swift.max(0, replaceDeadGateways), group: self, progress: MapProgress())
    }

    /// Runs the typed task `T` over a plain sequence of inputs; see
    /// ``map(_:_:inFlightPerGateway:chunkSize:ordered:maxAttempts:timeLimit:replaceDeadGateways:)-(T.Type,Inputs,_,_,_,_,_,_)`` for the behaviour.
    ///
    /// - Parameters:
    ///   - task: The typed task to run.
    ///   - inputs: The inputs.
    ///   - inFlightPerGateway: Calls in flight per gateway (at least 1).
    ///   - chunkSize: Inputs per remote call.
    ///   - ordered: `true` to yield results in input order.
    ///   - maxAttempts: How many times an input may be sent to a worker.
    ///   - timeLimit: How long one call may run before its worker is killed.
    ///   - replaceDeadGateways: How many lost gateways the map may replace.
    /// - Returns: The results, one per input.
    public func map<T: TypedTask, Inputs: Sequence & Sendable>(
        _ task: T.Type, _ inputs: Inputs, inFlightPerGateway: Int = 4, chunkSize: Int = 1, ordered: Bool = false,
        maxAttempts: Int = 3, timeLimit: Duration? = nil, replaceDeadGateways: Int = 0
    ) -> TaskMap<T, SequenceInputs<Inputs>> where Inputs.Element == T.Input {
        map(task, SequenceInputs(base: inputs), inFlightPerGateway: inFlightPerGateway, chunkSize: chunkSize, ordered: ordered,
            maxAttempts: maxAttempts, timeLimit: timeLimit, replaceDeadGateways: replaceDeadGateways)
    }
}

/// A plain `Sequence` seen as an `AsyncSequence`, for ``Group/map(_:_:inFlightPerGateway:chunkSize:ordered:maxAttempts:timeLimit:replaceDeadGateways:)-(T.Type,Inputs,_,_,_,_,_,_)``.
public struct SequenceInputs<Base: Sequence & Sendable>: AsyncSequence, Sendable {
    /// The wrapped sequence.
    public let base: Base

    /// Iterates the wrapped sequence.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.Iterator
        /// The next element of the wrapped sequence.
        public mutating func next() async -> Base.Element? { base.next() }

        /// The next element of the wrapped sequence, on the caller's isolation (no executor hop:
        /// the map pulls each input from its own actor).
        public mutating func next(isolation actor: isolated (any Actor)?) async -> Base.Element? { base.next() }
    }

    /// Makes an iterator over the wrapped sequence.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeIterator()) }
}

/// The results of ``Group/map(_:_:inFlightPerGateway:chunkSize:ordered:maxAttempts:timeLimit:replaceDeadGateways:)-(T.Type,Inputs,_,_,_,_,_,_)``.
///
/// Iterate it once: each iteration starts the map anew. The iterator throws only if the input
/// sequence throws (after the results of the inputs taken before) or the consumer is cancelled.
public struct TaskMap<T: TypedTask, Inputs: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Inputs.Element == T.Input {
    /// One result per input.
    public typealias Element = MapResult<T.Output>

    let gateways: [Gateway]
    let inputs: Inputs
    let inFlightPerGateway: Int
    let chunkSize: Int
    let ordered: Bool
    let maxAttempts: Int
    let timeLimit: Duration?
    let replacements: Int
    let group: Group
    /// The map's counts (done, failed, in flight, retried) and rate, as snapshots.
    public let progress: MapProgress

    /// Iterates the results; starting it starts the map.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let run: MapRun<T, Inputs>

        /// The next result, or `nil` after the last.
        public mutating func next() async throws -> MapResult<T.Output>? {
            let run = self.run
            return try await withTaskCancellationHandler {
                try await run.engine.nextResult()
            } onCancel: {
                run.cancel()
            }
        }
    }

    /// Starts the map and returns its iterator.
    public func makeAsyncIterator() -> AsyncIterator {
        let engine = MapEngine<T, Inputs>(
            inputs: inputs, capacity: Swift.max(1, gateways.count) * inFlightPerGateway * chunkSize * 4,
            ordered: ordered, maxAttempts: maxAttempts, chunkSize: chunkSize, timeLimit: timeLimit, replacements: replacements,
            group: group, lanesPerGateway: inFlightPerGateway, progress: progress)
        progress.start()
        let lanes = gateways.filter(\.isAlive).flatMap { Array(repeating: $0, count: inFlightPerGateway) }
        let driver = Task { await engine.drive(lanes: lanes) }
        return AsyncIterator(run: MapRun(engine: engine, driver: driver))
    }

    /// Runs the map and returns the outputs in input order.
    ///
    /// - Returns: One output per input, in input order.
    /// - Throws: The first ``MapFailure`` (the rest of the map is then cancelled), or what the input
    ///   sequence throws.
    public func collect() async throws -> [T.Output] {
        var outputs: [Int: T.Output] = [:]
        for try await item in self {
            outputs[item.index] = try item.result.get()
        }
        return (0..<outputs.count).map { outputs[$0]! }
    }
}

/// A running map: its engine and driver, cancelled when the iterator goes away.
final class MapRun<T: TypedTask, Inputs: AsyncSequence & Sendable>: Sendable where Inputs.Element == T.Input {
    let engine: MapEngine<T, Inputs>
    let driver: Task<Void, Never>

    init(engine: MapEngine<T, Inputs>, driver: Task<Void, Never>) {
        self.engine = engine
        self.driver = driver
    }

    func cancel() {
        driver.cancel()
        let engine = self.engine
        Task { await engine.cancel() }
    }

    deinit { cancel() }
}

/// The map's shared state: the input source, the retry queue, and the results for the consumer.
actor MapEngine<T: TypedTask, Inputs: AsyncSequence & Sendable> where Inputs.Element == T.Input {
    struct WorkItem: Sendable {
        let index: Int
        let input: T.Input
        var causes: [any Error] = []
    }

    private let inputs: Inputs
    private var iterator: Inputs.AsyncIterator?
    private var pulling = false
    private var inputsDone = false
    private var inputFailure: (any Error)?
    private var nextIndex = 0
    private var retries = Deque<WorkItem>()
    /// Inputs pulled by a lane that could not run them (never sent yet).
    private var fresh = Deque<WorkItem>()
    private var inFlight = 0
    /// Inputs taken whose result the consumer has not received yet (bounded by `capacity`).
    private var outstanding = 0
    private let capacity: Int
    private let ordered: Bool
    private let maxAttempts: Int
    private let chunkSize: Int
    private let timeLimit: Duration?
    private var deadGateways: Set<String> = []
    /// Inputs in flight per gateway.
    private var busy: [String: Int] = [:]
    /// Gateways running a retried input alone (so that a second death is the input's own doing).
    private var isolated: Set<String> = []
    private var takers: [CheckedContinuation<Void, Never>] = []
    private var ready = Deque<MapResult<T.Output>>()
    private var held: [Int: MapResult<T.Output>] = [:]
    private var nextToDeliver = 0
    private var consumer: CheckedContinuation<Void, Never>?
    private var finished = false
    private var cancelled = false

    private let progress: MapProgress

    private var replacementsLeft: Int
    private let lanesPerGateway: Int
    private let group: Group

    init(inputs: Inputs, capacity: Int, ordered: Bool, maxAttempts: Int, chunkSize: Int, timeLimit: Duration?,
         replacements: Int, group: Group, lanesPerGateway: Int, progress: MapProgress) {
        self.chunkSize = chunkSize
        self.lanesPerGateway = lanesPerGateway
        self.timeLimit = timeLimit
        self.replacementsLeft = replacements
        self.group = group
        self.progress = progress
        self.inputs = inputs
        self.capacity = capacity
        self.ordered = ordered
        self.maxAttempts = maxAttempts
    }

    // MARK: Driving

    /// Runs the lanes, then fails whatever no gateway was left to run, then ends the results.
    func drive(lanes: [Gateway]) async {
        await withTaskGroup(of: Void.self) { group in
            for gateway in lanes {
                group.addTask { await self.lane(gateway) }
            }
        }
        if !cancelled && !Task.isCancelled {
            // Every lane ended with work left: no gateway is left to run it.
            while let item = fresh.popFirst() ?? retries.popFirst() {
                inFlight += 1
                finish(item, .failure(MapFailure(index: item.index, causes: item.causes + [NoGatewayLeftError()])), gatewayID: nil,
                       attempts: item.causes.count)
            }
            while let item = await pullInput() {
                inFlight += 1
                finish(item, .failure(MapFailure(index: item.index, causes: [NoGatewayLeftError()])), gatewayID: nil,
                       attempts: 0)
            }
        }
        finished = true
        progress.update { $0.isFinished = true }
        wakeConsumer()
    }

    private nonisolated func lane(_ gateway: Gateway) async {
        // One hop onto the engine per call: it records the results and hands out the next inputs.
        var next = await take(gatewayID: gateway.id)
        while let batch = next {
            // One input goes as a single call; a chunk as one call carrying every input.
            let results: [Result<T.Output, any Error>]
            do {
                if batch.count == 1 {
                    let input = batch[0].input
                    results = [.success(try await withinLimit(gateway) { try await gateway.call(T.self, input) })]
                } else {
                    let inputs = batch.map(\.input)
                    results = try await withinLimit(gateway) { try await gateway.callChunk(T.self, inputs) }
                }
            } catch let error where Self.isFinal(error) {
                next = await complete(batch, Array(repeating: .failure(error), count: batch.count), gatewayID: gateway.id)
                continue
            } catch {
                if Task.isCancelled {
                    await abandon(batch.count, gatewayID: gateway.id)
                    return
                }
                var shouldReplace = false
                for item in batch where await lost(item, error, gatewayID: gateway.id, gatewayLost: true) {
                    shouldReplace = true
                }
                if shouldReplace { await replace(gateway) }
                return
            }
            next = await complete(batch, results, gatewayID: gateway.id)
        }
    }

    /// Records the results of a lane's call (one per input) and takes its next inputs.
    private func complete(_ batch: [WorkItem], _ results: [Result<T.Output, any Error>], gatewayID: String) async -> [WorkItem]? {
        for index in batch.indices { settle(batch[index], results[index], gatewayID: gatewayID) }
        return await take(gatewayID: gatewayID)
    }

    /// Whether a call's error ends its input for good (the worker is fine: the task or the input
    /// is at fault), rather than counting as a lost worker.
    private static func isFinal(_ error: any Error) -> Bool {
        if error is RemoteTaskError || error is UnknownTaskError || error is RemoteError { return true }
        if error is DecodingError || error is EncodingError { return true }
        if let error = error as? ExecnetError { return error.code == .unencodable || error.code == .messageTooLarge }
        return false
    }

    /// Records the result of one input whose call came back (its worker is alive).
    private func settle(_ item: WorkItem, _ result: Result<T.Output, any Error>, gatewayID: String) {
        switch result {
        case .success(let output):
            finish(item, .success(output), gatewayID: gatewayID)
        case .failure(let error as RemoteTaskError) where T.isRetryable(error):
            lost(item, error, gatewayID: gatewayID, gatewayLost: false)
        case .failure(let error):
            finish(item, .failure(MapFailure(index: item.index, causes: item.causes + [error])), gatewayID: gatewayID)
        }
    }

    /// Starts a gateway of the same spec as the lost `gateway` and runs its lanes.
    private nonisolated func replace(_ gateway: Gateway) async {
        // An explicit id would clash with the lost gateway's; the new one gets a fresh id.
        let spec = gateway.spec.text.split(separator: "//", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("id=") }.joined(separator: "//")
        guard let fresh = try? await group.makeGateway(spec) else { return }
        await withTaskGroup(of: Void.self) { lanes in
            for _ in 0..<lanesPerGateway {
                lanes.addTask { await self.lane(fresh) }
            }
        }
    }

    /// Runs one call; past the time limit, kills the worker and throws ``MapTimeLimitError``.
    private nonisolated func withinLimit<R: Sendable>(
        _ gateway: Gateway, _ call: @escaping @Sendable () async throws -> R
    ) async throws -> R {
        guard let timeLimit else { return try await call() }
        return try await withThrowingTaskGroup(of: R?.self) { calls in
            calls.addTask { try await call() }
            calls.addTask {
                try await Task.sleep(for: timeLimit)
                return nil
            }
            defer { calls.cancelAll() }
            let first: R? = try await calls.next() ?? nil
            if let output = first { return output }
            // A hung task: its worker is killed and the input counts as lost with it.
            gateway.kill()
            throw MapTimeLimitError(gatewayID: gateway.id, limit: timeLimit)
        }
    }

    // MARK: Lanes

    /// The next inputs for a lane of `gatewayID` (up to `chunkSize`; a retried input alone), or
    /// `nil` when there is no more work for it.
    private func take(gatewayID: String) async -> [WorkItem]? {
        while true {
            if cancelled || Task.isCancelled || deadGateways.contains(gatewayID) { return nil }
            if isolated.contains(gatewayID) {
                await withCheckedContinuation { takers.append($0) }
                continue
            }
            if !fresh.isEmpty {
                var batch: [WorkItem] = []
                while batch.count < chunkSize, let item = fresh.popFirst() { batch.append(item) }
                return claim(batch, gatewayID: gatewayID)
            }
            if !retries.isEmpty {
                // A retried input runs alone on its gateway: a worker that dies then died of it, not
                // of a bystander. Lanes of busy gateways wait for their gateway to drain.
                if busy[gatewayID, default: 0] == 0, let item = retries.popFirst() {
                    isolated.insert(gatewayID)
                    return claim([item], gatewayID: gatewayID)
                }
                await withCheckedContinuation { takers.append($0) }
                continue
            }
            if !inputsDone && !pulling && outstanding < capacity {
                var batch: [WorkItem] = []
                while batch.count < chunkSize, outstanding < capacity, let item = await pullInput() { batch.append(item) }
                if batch.isEmpty { continue }
                if deadGateways.contains(gatewayID) || isolated.contains(gatewayID) || !retries.isEmpty {
                    // The gateway died or the rules changed while pulling: hand the inputs to whoever comes next.
                    fresh.append(contentsOf: batch)
                    wakeTakers()
                    continue
                }
                return claim(batch, gatewayID: gatewayID)
            }
            if inputsDone && !pulling && retries.isEmpty && fresh.isEmpty && inFlight == 0 { return nil }
            await withCheckedContinuation { takers.append($0) }
        }
    }

    /// Counts `batch` as running on `gatewayID`.
    private func claim(_ batch: [WorkItem], gatewayID: String) -> [WorkItem] {
        inFlight += batch.count
        noteInFlight()
        busy[gatewayID, default: 0] += batch.count
        return batch
    }

    /// Pulls the next input (one puller at a time), counting it as outstanding.
    private func pullInput() async -> WorkItem? {
        if inputsDone { return nil }
        if iterator == nil { iterator = inputs.makeAsyncIterator() }
        pulling = true
        defer {
            pulling = false
            wakeTakers()
        }
        do {
            var current = iterator!
            let next = try await current.next(isolation: self)
            iterator = current
            guard let input = next else {
                inputsDone = true
                return nil
            }
            let index = nextIndex
            nextIndex += 1
            outstanding += 1
            return WorkItem(index: index, input: input)
        } catch {
            inputFailure = error
            inputsDone = true
            return nil
        }
    }

    /// Records an input's final result.
    private func finish(_ item: WorkItem, _ result: Result<T.Output, MapFailure>, gatewayID: String?, attempts: Int? = nil) {
        inFlight -= 1
        if let gatewayID { release(gatewayID) }
        let succeeded = if case .success = result { true } else { false }
        progress.update { snapshot in
            if succeeded { snapshot.succeeded += 1 } else { snapshot.failed += 1 }
            snapshot.inFlight = inFlight
        }
        let entry = MapResult(index: item.index, result: result, attempts: attempts ?? item.causes.count + 1, gatewayID: gatewayID)
        if ordered {
            held[item.index] = entry
            while let next = held.removeValue(forKey: nextToDeliver) {
                ready.append(next)
                nextToDeliver += 1
            }
        } else {
            ready.append(entry)
        }
        wakeConsumer()
        wakeTakers()
    }

    /// A lane's worker was lost while running `item`: requeue it once, or fail it after the limit.
    /// Returns whether the caller should replace the gateway (first report of its loss, and
    /// replacements left).
    @discardableResult
    private func lost(_ item: WorkItem, _ error: any Error, gatewayID: String, gatewayLost: Bool) -> Bool {
        var shouldReplace = false
        if gatewayLost && deadGateways.insert(gatewayID).inserted && replacementsLeft > 0 && !cancelled {
            replacementsLeft -= 1
            shouldReplace = true
        }
        defer { if shouldReplace { progress.update { $0.replaced += 1 } } }
        var item = item
        item.causes.append(error)
        if item.causes.count >= maxAttempts {
            let failure = MapFailure(index: item.index, causes: item.causes)
            item.causes.removeLast()
            finish(item, .failure(failure), gatewayID: gatewayID)
        } else {
            inFlight -= 1
            release(gatewayID)
            retries.append(item)
            progress.update { snapshot in
                snapshot.retried += 1
                snapshot.inFlight = inFlight
            }
            wakeTakers()
        }
        return shouldReplace
    }

    private func noteInFlight() {
        let now = inFlight
        progress.update { $0.inFlight = now }
    }

    /// A call on `gatewayID` ended.
    private func release(_ gatewayID: String) {
        busy[gatewayID, default: 1] -= 1
        if busy[gatewayID] == 0 { isolated.remove(gatewayID) }
    }

    /// A lane stopped by cancellation gives up its inputs.
    private func abandon(_ count: Int, gatewayID: String) {
        for _ in 0..<count {
            inFlight -= 1
            release(gatewayID)
        }
        // The snapshot too: a cancelled map reports nothing in flight once its lanes stopped.
        noteInFlight()
        wakeTakers()
    }

    private func wakeTakers() {
        let waiting = takers
        takers = []
        for taker in waiting { taker.resume() }
    }

    // MARK: Consumer

    /// The next result for the consumer, `nil` at the end.
    func nextResult() async throws -> MapResult<T.Output>? {
        while true {
            if cancelled || Task.isCancelled {
                cancelled = true
                throw CancellationError()
            }
            if let result = ready.popFirst() {
                outstanding -= 1
                // Only a lane that found the window full waits for the consumer.
                if outstanding == capacity - 1 { wakeTakers() }
                return result
            }
            if finished {
                if let failure = inputFailure {
                    inputFailure = nil
                    throw failure
                }
                return nil
            }
            await withCheckedContinuation { consumer = $0 }
        }
    }

    private func wakeConsumer() {
        consumer?.resume()
        consumer = nil
    }

    /// Cancels the map: lanes stop taking inputs, the consumer's wait ends.
    func cancel() {
        cancelled = true
        wakeTakers()
        wakeConsumer()
    }
}
