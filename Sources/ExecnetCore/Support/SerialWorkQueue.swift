// A thread that runs submitted jobs one at a time, in order. Channel callbacks run here, never on
// the I/O thread, so a slow callback cannot stall the sockets.

#if canImport(Glibc)
import Glibc
#endif
import DequeModule

/// A named thread running jobs in submission order.
final class SerialWorkQueue: @unchecked Sendable {
    // Protected by `mutex`.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var jobs: Deque<@Sendable () -> Void> = []
    private var thread: OSThread?

    /// The process-wide queue for channel callbacks.
    static let callbacks = SerialWorkQueue(name: "execnet-cb")

    /// Starts the thread.
    init(name: String) {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        thread = OSThread(name: name) { [unowned(unsafe) self] in
            self.runLoop()
        }
    }

    /// Queues `job`; it runs after every job queued before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    private func runLoop() {
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty { pthread_cond_wait(&condition, &mutex) }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(&mutex)
            job()
        }
    }
}
