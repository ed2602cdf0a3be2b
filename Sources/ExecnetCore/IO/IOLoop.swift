// The poll loop of an I/O thread: sockets and plain file descriptors with their handlers, and the
// thread's timers (TimerQueue.swift). Lives on the I/O thread only; only the timer queue is shared.

import CExecnetShims
import ZeroMQ

/// The kernel id of the calling thread.
func currentThreadID() -> Int32 { cexecnet_gettid() }

/// The calling thread's I/O-thread token (0 unless it is an I/O thread).
func cexecnetThreadToken() -> UInt { UInt(cexecnet_thread_token()) }

/// Wakes a poll on an eventfd.
func cexecnetWake(_ fd: Int32) -> Int32 { cexecnet_eventfd_signal(fd) }

/// The sources, timers and poll loop of one I/O thread.
///
/// - Important: Used on its I/O thread only (it holds sockets, which are not Sendable).
package final class IOLoop {
    private enum SourceKind {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }
    private struct Source {
        let kind: SourceKind
        let handler: () -> Void
        /// Called when the socket can take a message, while someone waits for that (``watchWritable(_:_:)``).
        var onWritable: (() -> Void)?

        var events: ZMQEvents { onWritable == nil ? .readable : [.readable, .writable] }
    }
    private let mailboxFD: Int32
    private var sources: [Source] = []
    private var poller = ZMQPoller()
    private var pollerIsStale = true
    /// The thread's timers: the role's own (``schedule(at:_:)``) and timed waits from other threads.
    package let timers: TimerQueue

    package init(mailboxFD: Int32, timers: TimerQueue) {
        self.mailboxFD = mailboxFD
        self.timers = timers
    }

    /// Calls `handler` whenever `socket` is readable. The handler must drain what it can.
    package func addSocket(_ socket: ZMQSocket, onReadable handler: @escaping () -> Void) {
        sources.append(Source(kind: .socket(socket), handler: handler))
        pollerIsStale = true
    }

    /// Calls `handler` whenever `fd` is readable (or hung up).
    package func addFileDescriptor(_ fd: Int32, onReadable handler: @escaping () -> Void) {
        sources.append(Source(kind: .fileDescriptor(fd), handler: handler))
        pollerIsStale = true
    }

    /// Stops polling `fd`. The caller closes it.
    package func removeFileDescriptor(_ fd: Int32) {
        sources.removeAll { source in
            if case .fileDescriptor(let other) = source.kind { return other == fd }
            return false
        }
        pollerIsStale = true
    }

    /// Calls `handler` whenever `socket`, one of this loop's sources, can take a message (its
    /// pipe has room), until called again with `nil`.
    ///
    /// - Returns: `false` if `socket` is not one of the loop's sources (nothing is watched).
    @discardableResult
    package func watchWritable(_ socket: ZMQSocket, _ handler: (() -> Void)?) -> Bool {
        guard let index = sources.firstIndex(where: { source in
            if case .socket(let other) = source.kind { return other === socket }
            return false
        }) else { return false }
        sources[index].onWritable = handler
        if !pollerIsStale { poller.setEvents(sources[index].events, at: index + 1) }
        return true
    }

    /// Stops polling `socket`. The caller closes it.
    package func removeSocket(_ socket: ZMQSocket) {
        sources.removeAll { source in
            if case .socket(let other) = source.kind { return other === socket }
            return false
        }
        pollerIsStale = true
    }

    /// Runs `action` on this thread once `deadline` has passed.
    ///
    /// - Returns: A handle whose `cancel()` removes the timer at once.
    @discardableResult
    package func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping () -> Void) -> TimerHandle {
        timers.schedule(at: deadline, loop: action)
    }

    private func rebuildPoller() {
        poller = ZMQPoller()
        _ = poller.add(fileDescriptor: mailboxFD, events: .readable)
        for source in sources {
            switch source.kind {
            case .socket(let socket): _ = poller.add(socket, events: source.events)
            case .fileDescriptor(let fd): _ = poller.add(fileDescriptor: fd, events: .readable)
            }
        }
        pollerIsStale = false
    }

    private func pollTimeout(now: ContinuousClock.Instant) -> Duration? {
        guard let wake = timers.nextWake(now: now) else { return nil }
        return max(.zero, now.duration(to: wake))
    }

    /// Polls and dispatches until `shouldStop` says so.
    ///
    /// Each turn: wait for the mailbox, a source or the next timer; handle the mailbox first (it
    /// carries sends and control), then readable sources, then due timers; then `afterWakeUp`;
    /// then the task jobs queued so far (`runJobs`, which says whether more are waiting: the next
    /// poll then does not sleep).
    package func run(shouldStop: () -> Bool, onMailbox: () -> Void, afterWakeUp: () -> Void, runJobs: () -> Bool) {
        var jobsWaiting = false
        while !shouldStop() {
            if pollerIsStale { rebuildPoller() }
            let timeout = jobsWaiting ? .zero : pollTimeout(now: .now)
            let ready: Bool
            do {
                if case .ready = try poller.poll(timeout: timeout) { ready = true } else { ready = false }
            } catch {
                // ETERM: the context is closing; the loop ends.
                return
            }
            if ready {
                // Handlers may add or remove sources; dispatch over the sources this poll saw.
                let snapshot = sources
                if poller.readyEvents(at: 0).contains(.readable) { onMailbox() }
                for (index, source) in snapshot.enumerated() {
                    let events = poller.readyEvents(at: index + 1)
                    if events.contains(.readable) || events.contains(.error) { source.handler() }
                    if events.contains(.writable), let onWritable = source.onWritable { onWritable() }
                }
            }
            timers.runDue()
            afterWakeUp()
            jobsWaiting = runJobs()
        }
    }
}
