// A thread that runs submitted jobs one at a time, in order. Channel callbacks run here, never on
// the I/O thread, so a slow callback cannot stall the sockets.

#if canImport(Glibc)
import Glibc
#endif
import DequeModule

/// A named thread running jobs in submission order.
final class SerialWorkQueue: @unchecked Sendable {
    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var jobs: Deque<@Sendable () -> Void> = []
    private var thread: OSThread?

    /// The process-wide queue for channel callbacks.
    static let callbacks = SerialWorkQueue(name: "execnet-cb")

    /// Starts the thread.
    init(name: String) {
        // The thread holds the queue: it runs for the life of the process, and so does the queue.
        thread = OSThread(name: name) { [self] in
            self.runLoop()
        }
    }

    /// Queues `job`; it runs after every job queued before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        lock.withLock {
            jobs.append(job)
            lock.signal()
        }
    }

    private func runLoop() {
        while true {
            let job = lock.withLock {
                while jobs.isEmpty { lock.wait() }
                return jobs.removeFirst()
            }
            job()
        }
    }
}
