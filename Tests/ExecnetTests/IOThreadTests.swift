// The I/O thread without sockets: commands from other threads in order, code that prefers the
// thread's executor runs on it and has its own submissions handled at once, a drained batch keeps
// its order against submissions made while it is handled, and tasks outlive a stopped thread.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Synchronization
import Testing

/// A role that only records what it handles, on which thread, and can submit from inside.
private final class RecordingRole: IOThreadRole {
    enum Command: Sendable {
        case record(Int)
        /// Records `first`, then submits `.record(then)` from the I/O thread itself.
        case recordThenSubmit(first: Int, then: Int)
        /// Raises `started`, then holds the I/O thread until `release` is raised.
        case block(started: ThreadSignal, release: ThreadSignal)
    }

    let log: RecordingLog

    init(log: RecordingLog) { self.log = log }

    func setUp(_ loop: IOLoop) throws {}

    func handle(_ command: Command, _ loop: IOLoop) {
        switch command {
        case .record(let value):
            log.append(value)
        case .recordThenSubmit(let first, let then):
            log.append(first)
            log.thread.withLock { $0 }?.submit(.record(then))
        case .block(let started, let release):
            started.raise()
            _ = release.wait(deadline: nil)
        }
    }

    func afterWakeUp(_ loop: IOLoop) {}
    func tearDown(_ loop: IOLoop) {}
}

private final class RecordingLog: Sendable {
    let values = Mutex<[Int]>([])
    let thread = Mutex<IOThread<RecordingRole>?>(nil)

    func append(_ value: Int) { values.withLock { $0.append(value) } }
    var snapshot: [Int] { values.withLock { $0 } }
}

private func makeThread() throws -> (IOThread<RecordingRole>, RecordingLog) {
    let log = RecordingLog()
    let thread = try IOThread(name: "execnet-io-test") { RecordingRole(log: log) }
    log.thread.withLock { $0 = thread }
    return (thread, log)
}

private func eventually(_ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now.advanced(by: .seconds(5))
    while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    return condition()
}

@Suite struct IOThreadTests {
    @Test func commandsFromOtherThreadsAreHandledInOrder() async throws {
        let (thread, log) = try makeThread()
        for value in 0..<1_000 { #expect(thread.submit(.record(value))) }
        #expect(try await eventually { log.snapshot.count == 1_000 })
        #expect(log.snapshot == Array(0..<1_000))
        await thread.stopAndWait()
        #expect(!thread.submit(.record(-1)))
    }

    @Test func codeThatPrefersTheExecutorRunsThereAndItsSubmissionsAreHandledAtOnce() async throws {
        let (thread, log) = try makeThread()
        let (onThread, handledAtOnce) = await withTaskExecutorPreference(thread.executor) {
            let here = thread.isCurrent
            thread.submit(.record(7))
            return (here, log.snapshot == [7])
        }
        #expect(onThread)
        #expect(handledAtOnce)
        #expect(!thread.isCurrent)
        await thread.stopAndWait()
    }

    @Test func aDrainedBatchKeepsItsOrderAgainstSubmissionsMadeWhileItIsHandled() async throws {
        let (thread, log) = try makeThread()
        // While the I/O thread is held, 1, 3 and 4 queue up and are then drained as one batch; 1
        // submits 2 from the I/O thread while 3 and 4 are still to be handled.
        let started = ThreadSignal(), release = ThreadSignal()
        thread.submit(.block(started: started, release: release))
        #expect(try await eventually { started.isRaised })
        thread.submit(.recordThenSubmit(first: 1, then: 2))
        thread.submit(.record(3))
        thread.submit(.record(4))
        release.raise()
        #expect(try await eventually { log.snapshot.count == 4 })
        #expect(log.snapshot == [1, 3, 4, 2])
        await thread.stopAndWait()
    }

    @Test func aTaskThatPrefersAStoppedThreadGoesOnElsewhere() async throws {
        let (thread, _) = try makeThread()
        let gate = AsyncGate()
        let task = Task(executorPreference: thread.executor) { () -> Bool in
            await gate.wait()
            return thread.isCurrent
        }
        #expect(try await eventually { gate.hasWaiter })
        await thread.stopAndWait()
        gate.open()
        // Resumed after the thread stopped: it runs on the global executor instead of hanging.
        #expect(await task.value == false)
    }
}

/// A one-shot gate that async code can wait on and any thread can open.
private final class AsyncGate: Sendable {
    private let state = Mutex<(open: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let openAlready = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiter = continuation
                return false
            }
            if openAlready { continuation.resume() }
        }
    }

    var hasWaiter: Bool { state.withLock { $0.waiter != nil } }

    func open() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.open = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
