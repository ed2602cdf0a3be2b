// The I/O thread's inbox: a locked queue of commands plus an eventfd that the I/O thread polls
// beside its sockets (CZMQ's actor pipe). Any thread may submit; only the I/O thread drains.

import CExecnetShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A multi-producer, single-consumer queue whose consumer sleeps in `zmq_poll` on ``fileDescriptor``.
///
/// Submitting to an empty mailbox writes the eventfd once; further submissions before the consumer
/// drains it only append, so a burst of sends costs one wake-up.
final class Mailbox<Command: Sendable>: Sendable {
    private struct State {
        var commands: [Command] = []
        var signaled = false
        var closed = false
    }
    private let state = Mutex(State())
    /// The eventfd polled by the consumer; readable while commands wait.
    let fileDescriptor: Int32

    init() throws {
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
    func submit(_ command: Command) -> Bool {
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

    /// Takes every queued command, in submission order. Consumer only.
    func drain() -> [Command] {
        _ = cexecnet_eventfd_drain(fileDescriptor)
        return state.withLock { state in
            state.signaled = false
            let taken = state.commands
            state.commands.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// Refuses further commands and returns what was still queued.
    func close() -> [Command] {
        state.withLock { state in
            state.closed = true
            let taken = state.commands
            state.commands = []
            return taken
        }
    }
}
