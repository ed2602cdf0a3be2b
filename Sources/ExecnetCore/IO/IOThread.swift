// The I/O thread (CZMQ's actor): one named thread owns a ZeroMQ context's sockets and a poll loop.
// Other threads reach it only through its mailbox. The role (client hub or worker connection)
// decides what the sockets are and what commands mean; this file only runs the loop.

import CExecnetShims
import ExecnetValue
import Synchronization
import ZeroMQ

/// What runs on an I/O thread: the client's hub or the worker's connection.
///
/// - Important: Every method is called on the I/O thread only.
package protocol IOThreadRole: AnyObject, SendableMetatype {
    /// The commands other threads send to this role.
    associatedtype Command: Sendable
    /// Creates sockets and registers sources; `IOThread.init` returns (or throws) after this.
    func setUp(_ loop: IOLoop) throws
    /// Handles one command from the mailbox.
    func handle(_ command: Command, _ loop: IOLoop)
    /// Runs after every wake-up, once sources and commands were handled (flush queued sends).
    func afterWakeUp(_ loop: IOLoop)
    /// Runs once when the loop stops; close sockets here.
    func tearDown(_ loop: IOLoop)
}

/// A thread that owns a role's sockets and runs its poll loop.
///
/// `init` returns once the role's `setUp` has run on the new thread (or throws its error);
/// ``stop()`` asks the loop to end, waits for `tearDown` and joins. Both are synchronous, so the
/// caller always knows whether the sockets exist.
package final class IOThread<Role: IOThreadRole>: Sendable {
    /// The inbox; any thread may submit.
    package let mailbox: Mailbox<Role.Command>
    /// Runs task jobs on this thread (for tasks that prefer it, see ``IOThreadExecutor``).
    package let executor: IOThreadExecutor
    /// The thread's timers; any thread may schedule a timed wait's expiry here.
    package let timers: TimerQueue
    /// The role and loop, for commands the I/O thread submits to itself.
    private let owned = OwnedByIOThread<Role>()
    private let flags = IOThreadFlags()
    private let thread: Mutex<OSThread?> = Mutex(nil)
    private let finished = ThreadSignal()

    /// Starts the thread and waits until the role is set up.
    ///
    /// - Parameters:
    ///   - name: The thread's name (`execnet-io`).
    ///   - makeRole: Creates the role; called on the new thread.
    /// - Throws: Whatever `makeRole` or the role's `setUp` threw; the thread has then ended.
    package init(name: String, makeRole: @escaping @Sendable () throws -> Role) throws {
        let mailbox = try Mailbox<Role.Command>()
        self.mailbox = mailbox
        let token = UInt(bitPattern: ObjectIdentifier(mailbox).hashValue)
        let executor = IOThreadExecutor(jobs: mailbox, token: token)
        self.executor = executor
        let timers = TimerQueue(ownerToken: token) { [mailbox] in _ = cexecnetWake(mailbox.fileDescriptor) }
        self.timers = timers
        let ready = ThreadSignal()
        let setUpError = Mutex<(any Error)?>(nil)
        let flags = self.flags
        let finished = self.finished
        let owned = self.owned
        let osThread = OSThread(name: name) { [mailbox] in
            flags.threadID.store(currentThreadID(), ordering: .releasing)
            cexecnet_set_thread_token(UInt(token))
            let loop = IOLoop(mailboxFD: mailbox.fileDescriptor, timers: timers)
            let role: Role
            do {
                role = try makeRole()
                try role.setUp(loop)
            } catch {
                timers.close()
                setUpError.withLock { $0 = error }
                ready.raise()
                finished.raise()
                return
            }
            owned.role = role
            owned.loop = loop
            ready.raise()
            loop.run(
                shouldStop: { flags.stopRequested.load(ordering: .acquiring) },
                onMailbox: {
                    // While a drained batch is handled, the thread's own submissions queue behind it.
                    owned.handlingBatch = true
                    for command in mailbox.drain() { role.handle(command, loop) }
                    owned.handlingBatch = false
                },
                afterWakeUp: { role.afterWakeUp(loop) },
                runJobs: {
                    for job in mailbox.takeJobs() { executor.run(job) }
                    return mailbox.hasJobs
                }
            )
            // Commands that arrive after the loop stopped are handled once, so none is lost silently.
            for command in mailbox.close() { role.handle(command, loop) }
            // Timed waits still pending go on on the fallback timer thread.
            timers.close()
            owned.role = nil
            owned.loop = nil
            role.tearDown(loop)
            // Tasks that still prefer this thread go on on the global executor.
            for job in mailbox.takeJobs() { globalConcurrentExecutor.enqueue(job) }
            finished.raise()
        }
        ready.wait(deadline: nil)
        if let error = setUpError.withLock({ $0 }) {
            osThread.join()
            throw error
        }
        thread.withLock { $0 = osThread }
    }

    /// Queues a command for the role; on the I/O thread itself, with nothing queued before it,
    /// the role handles it at once (a task running on ``executor`` sends without a wake-up).
    ///
    /// - Returns: `false` if the thread has stopped and the command was not queued.
    @discardableResult
    package func submit(_ command: Role.Command) -> Bool {
        if isCurrent, !owned.handlingBatch, let role = owned.role, let loop = owned.loop, mailbox.mayHandleDirectly() {
            role.handle(command, loop)
            return true
        }
        return mailbox.submit(command)
    }

    /// Whether the caller runs on this I/O thread.
    package var isCurrent: Bool { executor.isCurrent }

    /// Asks the loop to end, waits for the role's `tearDown`, and joins the thread. Idempotent.
    ///
    /// - Important: Blocks the calling thread; never call it on the I/O thread itself.
    @available(*, noasync, message: "blocks until the I/O thread has ended")
    package func stop() {
        precondition(!isCurrent, "IOThread.stop() called on the I/O thread itself; it would wait for itself")
        flags.stopRequested.store(true, ordering: .releasing)
        // Wake the poll so the flag is seen.
        _ = cexecnetWake(mailbox.fileDescriptor)
        finished.wait(deadline: nil)
        let osThread = thread.withLock { thread -> OSThread? in
            let taken = thread
            thread = nil
            return taken
        }
        osThread?.join()
    }
}

/// The role and loop as seen from their own thread.
///
/// - Important: Read and written on the I/O thread only (``IOThread/submit(_:)`` reads them only
///   after checking that it runs there), which is why the unchecked `Sendable` is sound.
private final class OwnedByIOThread<Role: IOThreadRole>: @unchecked Sendable {
    var role: Role?
    var loop: IOLoop?
    /// Set while a batch drained from the mailbox is being handled: commands submitted from this
    /// thread then are queued, so they cannot overtake the rest of the batch.
    var handlingBatch = false
}

/// Flags an I/O thread shares with its owner.
private final class IOThreadFlags: Sendable {
    /// Set by `stop()`; the loop ends when it sees it.
    let stopRequested = Atomic<Bool>(false)
    /// The kernel thread id of the I/O thread, for ownership checks.
    let threadID = Atomic<Int32>(0)
}

extension IOThread {
    /// Stops the thread from async code: the blocking ``stop()`` runs on a short-lived thread of
    /// its own, never on the cooperative pool.
    package func stopAndWait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            OSThread(name: "execnet-stop") {
                self.stop()
                continuation.resume()
            }.detach()
        }
    }
}
