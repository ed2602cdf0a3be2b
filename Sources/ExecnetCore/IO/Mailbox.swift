// The I/O thread's inbox: a locked queue of commands and of task jobs (see IOThreadExecutor), plus
// an eventfd that the I/O thread polls beside its sockets (CZMQ's actor pipe). Any thread may
// submit; only the I/O thread drains.

import CExecnetShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A multi-producer, single-consumer queue whose consumer sleeps in `zmq_poll` on ``fileDescriptor``.
///
/// Submitting to an empty mailbox writes the eventfd once; further submissions before the consumer
/// drains it only append, so a burst of sends costs one wake-up.
package final class Mailbox<Command: Sendable>: Sendable {
    private struct State {
        var commands: [Command] = []
        /// Jobs of tasks that run on the I/O thread, in enqueue order.
        var jobs: [UnownedJob] = []
        /// Whether the eventfd was written and not drained since.
        var signaled = false
        var closed = false
    }
    private let state = Mutex(State())
    /// The eventfd polled by the consumer; readable while commands wait.
    package let fileDescriptor: Int32

    package init() throws {
        let fd = cexecnet_eventfd()
        guard fd >= 0 else {
            throw ExecnetError(.transport, "eventfd failed: errno \(errno)")
        }
        fileDescriptor = fd
    }

    deinit {
        _ = Glibc.close(fileDescriptor)
    }

    /// Queues a command and wakes the consumer if it may be asleep.
    ///
    /// - Returns: `false` if the mailbox is closed (the I/O thread has stopped); the command is dropped.
    @discardableResult
    package func submit(_ command: Command) -> Bool {
        let wake: Bool? = state.withLock { state in
            if state.closed { return nil }
            state.commands.append(command)
            if state.signaled { return false }
            state.signaled = true
            return true
        }
        guard let wake else { return false }
        if wake { _ = cexecnet_eventfd_signal(fileDescriptor) }
        return true
    }

    /// Whether the I/O thread, submitting a command itself, may handle it at once instead: nothing
    /// submitted earlier is still queued (so order is kept) and the mailbox is open.
    package func mayHandleDirectly() -> Bool {
        state.withLock { !$0.closed && $0.commands.isEmpty }
    }

    /// Queues a job. From another thread this wakes the consumer; from the consumer's own thread
    /// (`wake: false`) it only appends, and the loop runs it before it polls again.
    ///
    /// - Returns: `false` if the mailbox is closed (the I/O thread has stopped); the job was not queued.
    package func submitJob(_ job: UnownedJob, wake: Bool) -> Bool {
        let signal: Bool? = state.withLock { state in
            if state.closed { return nil }
            state.jobs.append(job)
            if !wake || state.signaled { return false }
            state.signaled = true
            return true
        }
        guard let signal else { return false }
        if signal { _ = cexecnet_eventfd_signal(fileDescriptor) }
        return true
    }

    /// Takes every queued job, in enqueue order. Consumer only.
    package func takeJobs() -> [UnownedJob] {
        state.withLock { state in
            if state.jobs.isEmpty { return [] }
            let taken = state.jobs
            state.jobs.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// Whether jobs are queued. Consumer only (it decides whether the next poll may sleep).
    package var hasJobs: Bool { state.withLock { !$0.jobs.isEmpty } }

    /// Takes every queued command, in submission order. Consumer only.
    package func drain() -> [Command] {
        _ = cexecnet_eventfd_drain(fileDescriptor)
        return state.withLock { state in
            state.signaled = false
            let taken = state.commands
            state.commands.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// Refuses further commands and returns what was still queued.
    package func close() -> [Command] {
        state.withLock { state in
            state.closed = true
            let taken = state.commands
            state.commands = []
            return taken
        }
    }
}
