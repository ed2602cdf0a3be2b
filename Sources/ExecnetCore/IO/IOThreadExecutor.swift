// A task executor whose jobs run on an I/O thread, between its polls (SwiftNIO's event-loop
// executor, for the CZMQ actor). A task that prefers it sends straight to the socket and is resumed
// by arriving messages without a thread hop: two thread wake-ups fewer per message each way.

/// Runs task jobs on one I/O thread.
///
/// Jobs enqueued from another thread go through the mailbox and wake the poll; jobs enqueued on the
/// I/O thread itself (a continuation resumed by an arriving message) are only appended, and the
/// loop runs them before it polls again. Once the I/O thread has stopped, jobs run on the global
/// concurrent executor instead, so no task is stranded.
///
/// - Important: Code that runs here holds up every socket of the process while it runs: it must
///   not block, and should not compute for long.
package final class IOThreadExecutor: TaskExecutor {
    private let jobs: any IOJobSink
    /// The token the I/O thread stores in its thread-local slot.
    package let token: UInt

    package init(jobs: any IOJobSink, token: UInt) {
        self.jobs = jobs
        self.token = token
    }

    /// Whether the caller runs on this executor's I/O thread.
    package var isCurrent: Bool { cexecnetThreadToken() == token }

    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        if !jobs.submitJob(unowned, wake: !isCurrent) {
            globalConcurrentExecutor.enqueue(unowned)
        }
    }

    /// Runs one job on the I/O thread.
    package func run(_ job: UnownedJob) {
        job.runSynchronously(on: asUnownedTaskExecutor())
    }
}

/// Where an ``IOThreadExecutor`` queues jobs: the I/O thread's mailbox.
package protocol IOJobSink: Sendable {
    /// Queues a job; `false` if the I/O thread has stopped.
    func submitJob(_ job: UnownedJob, wake: Bool) -> Bool
}

extension Mailbox: IOJobSink {}
