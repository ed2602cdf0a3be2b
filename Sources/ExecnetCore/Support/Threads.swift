// Plain threads and a one-shot blocking signal, on pthreads (no Foundation). Used for the I/O thread,
// the callback thread, tasks that ask for a thread of their own, and the blocking channel API.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CExecnetShims

/// A joinable, named OS thread running `body`.
package final class OSThread: @unchecked Sendable {
    private var handle = pthread_t()
    // Only read after start (happens-before through pthread_create).
    private let body: @Sendable () -> Void
    private let name: String

    /// Starts a thread named `name` (at most 15 bytes are kept by the kernel) running `body`.
    package init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.body = body
        self.name = name
        let unmanaged = Unmanaged.passRetained(self)
        let rc = pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<OSThread>.fromOpaque(raw!).takeRetainedValue()
            _ = thread.name.withCString { cexecnet_set_thread_name($0) }
            thread.body()
            return nil
        }, unmanaged.toOpaque())
        precondition(rc == 0, "pthread_create failed with \(rc): the process is out of threads")
    }

    /// Waits for the thread to finish.
    package func join() {
        pthread_join(handle, nil)
    }

    /// Lets the thread's resources go when it finishes; it can no longer be joined.
    package func detach() {
        pthread_detach(handle)
    }
}

/// A pthread mutex and condition variable, each in heap memory of its own.
///
/// A pthread object must not move once initialised, and a stored property of a class has no
/// address Swift promises to keep (`&property` may be a temporary copy), so both live behind
/// pointers allocated here. The condition waits on the monotonic clock. What the lock guards is
/// the owner's business.
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` holding the lock.
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes one waiter. Call it holding the lock.
    func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiter. Call it holding the lock.
    func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits for a wake-up (or a spurious one), holding the lock before and after.
    @available(*, noasync, message: "blocks the calling thread")
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a wake-up (or a spurious one) until `deadline`, holding the lock before and after.
    ///
    /// - Returns: `false` once the deadline has passed.
    @available(*, noasync, message: "blocks the calling thread")
    func wait(until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = ContinuousClock.now.duration(to: deadline)
        if remaining <= .zero { return false }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = remaining.components
        var nanos = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var secs = Int(now.tv_sec) + Int(seconds)
        if nanos >= 1_000_000_000 { nanos -= 1_000_000_000; secs += 1 }
        var until = timespec(tv_sec: secs, tv_nsec: nanos)
        _ = pthread_cond_timedwait(condition, mutex, &until)
        return true
    }
}

/// A signal that one thread waits for and another raises, once. Waiting can have a deadline.
///
/// - Important: ``wait(deadline:)`` blocks the calling thread; never call it from async code.
final class ThreadSignal: @unchecked Sendable {
    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var raised = false

    init() {}

    /// Raises the signal, waking the waiter. Later raises do nothing.
    func raise() {
        lock.withLock {
            raised = true
            lock.broadcast()
        }
    }

    /// Whether the signal has been raised.
    var isRaised: Bool { lock.withLock { raised } }

    /// Blocks until the signal is raised or the deadline passes.
    ///
    /// - Parameter deadline: When to give up; `nil` waits forever.
    /// - Returns: `true` if the signal was raised, `false` on timeout.
    @available(*, noasync, message: "blocks the calling thread")
    @discardableResult
    func wait(deadline: ContinuousClock.Instant?) -> Bool {
        lock.withLock {
            while !raised {
                if let deadline {
                    if !lock.wait(until: deadline) { return false }
                } else {
                    lock.wait()
                }
            }
            return true
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded up, clamped to `Int32` (for poll timeouts and socket options).
    package var clampedMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: millis)
    }

    /// The duration in seconds as a `Double`.
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// A string from a NUL-terminated C buffer (no Foundation, no deprecated initializer).
package func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
