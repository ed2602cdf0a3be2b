// ZMQContext: the libzmq context that owns the I/O threads and makes sockets. It is Sendable:
// its state (live handle, terminating, terminated) sits behind a Mutex that is held only for
// quick, non-blocking libzmq calls, never across the blocking `zmq_ctx_term`.

import CZeroMQ
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq context: the I/O threads behind a set of sockets, and the factory for them.
///
/// Create one context per process (or per independent subsystem) and make every socket from it.
/// The context is created with `ZMQ_BLOCKY` off, so every socket starts with a linger of 0 and
/// termination never waits for unsent messages; ``ZMQSocket/setLinger(milliseconds:)`` accepts
/// only bounded values. Messages are not protected at shutdown by linger but by exit handshakes
/// (see <doc:Ownership>).
///
/// Shutting down has two steps, which libzmq keeps separate:
/// 1. ``shutdown()`` (any thread, never blocks) makes every blocking call on the context's
///    sockets fail with `ETERM` (``ZMQError/isTerminated``), so owning threads wake up and close
///    their sockets.
/// 2. ``terminate()`` blocks until every socket is closed, then frees the context.
///
/// - Important: `ZMQContext` is `Sendable`; every method may be called from any thread.
///   ``terminate()`` blocks until all of the context's sockets are closed, so never call it on a
///   thread that still owns an open socket of this context.
public final class ZMQContext: Sendable {
    /// The raw context pointer, sendable because libzmq contexts are thread-safe.
    struct Handle: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
    }

    /// Where the context is in its life.
    enum State: Sendable {
        /// Usable: sockets may be created.
        case live(Handle)
        /// `zmq_ctx_term` is running on some thread; no new sockets.
        case terminating
        /// `zmq_ctx_term` has returned; the handle is freed.
        case terminated
    }

    // MARK: Any thread (locked)

    /// The context's state. Held only around non-blocking libzmq calls on the handle, so a
    /// concurrent ``terminate()`` cannot free the handle while another thread is using it.
    private let state: Mutex<State>

    /// Creates a context with libzmq's default of one I/O thread and `ZMQ_BLOCKY` off.
    ///
    /// With `ZMQ_BLOCKY` off, new sockets get a linger of 0, so closing them discards unsent
    /// messages at once and ``terminate()`` cannot hang on them.
    ///
    /// - Throws: ``ZMQError`` from `zmq_ctx_new` (for example `EMFILE`) or from
    ///   `zmq_ctx_set(ZMQ_BLOCKY)`.
    /// - Important: May be called from any thread.
    public init() throws {
        let raw = try zmqCreate("zmq_ctx_new") { zmq_ctx_new() }
        do {
            try zmqCheck("zmq_ctx_set(ZMQ_BLOCKY)") { zmq_ctx_set(raw, ZMQ_BLOCKY, 0) }
        } catch {
            zmqMustSucceed("zmq_ctx_term") { zmq_ctx_term(raw) }
            throw error
        }
        state = Mutex(.live(Handle(raw: raw)))
    }

    /// Terminates the context if no one has.
    ///
    /// Every ``ZMQSocket`` keeps its context alive, so by the time this runs all sockets are
    /// closed and termination returns at once.
    deinit {
        terminate()
    }

    /// The number of libzmq I/O threads (`ZMQ_IO_THREADS`).
    ///
    /// One thread is plenty below about a gigabyte per second of traffic.
    ///
    /// - Returns: The configured count, or 0 once the context is terminating.
    /// - Important: May be read from any thread.
    public var ioThreads: Int {
        state.withLock { state in
            guard case .live(let handle) = state else { return 0 }
            return Int(zmq_ctx_get(handle.raw, ZMQ_IO_THREADS))
        }
    }

    /// Sets the number of libzmq I/O threads (`ZMQ_IO_THREADS`).
    ///
    /// Takes effect only if called before the first socket is created.
    ///
    /// - Parameters:
    ///   - count: The number of I/O threads; at least 1.
    /// - Throws: ``ZMQError`` with `EINVAL` for a bad count, or `ETERM` if the context is
    ///   terminating.
    /// - Important: May be called from any thread.
    public func setIOThreads(_ count: Int) throws {
        try state.withLock { (state) throws(ZMQError) in
            guard case .live(let handle) = state else {
                throw ZMQError(errno: ETERM, operation: "zmq_ctx_set(ZMQ_IO_THREADS)")
            }
            try zmqCheck("zmq_ctx_set(ZMQ_IO_THREADS)") {
                zmq_ctx_set(handle.raw, ZMQ_IO_THREADS, Int32(clamping: count))
            }
        }
    }

    /// Makes every blocking call on this context's sockets fail with `ETERM`; never blocks.
    ///
    /// After this, sockets can no longer be created, and each owning thread sees
    /// ``ZMQError/isTerminated`` from its next blocking call (or a poll), closes its sockets and
    /// exits. Calling it again, or after ``terminate()``, does nothing.
    ///
    /// - Important: May be called from any thread, including threads that own no socket. This is
    ///   how one thread interrupts another thread blocked in a receive or a poll.
    public func shutdown() {
        state.withLock { state in
            // A terminating context has already been shut down by zmq_ctx_term itself.
            guard case .live(let handle) = state else { return }
            zmqMustSucceed("zmq_ctx_shutdown") { zmq_ctx_shutdown(handle.raw) }
        }
    }

    /// Shuts the context down, waits until all its sockets are closed, and frees it.
    ///
    /// Because every socket's linger is bounded, this returns as soon as the owning threads have
    /// closed their sockets; it never waits for unsent messages beyond the linger. `EINTR` is
    /// retried. Idempotent: a second call, or a call racing with another thread's, returns at
    /// once without waiting for the first to finish.
    ///
    /// - Important: Blocks the calling thread until every socket of this context is closed. Call
    ///   it from a thread that owns none of them, after the owning threads have seen `ETERM`
    ///   (or been told to stop) and closed their sockets.
    public func terminate() {
        let claimed: Handle? = state.withLock { state in
            guard case .live(let handle) = state else { return nil }
            state = .terminating
            return handle
        }
        guard let handle = claimed else { return }
        zmqMustSucceed("zmq_ctx_term") { zmq_ctx_term(handle.raw) }
        state.withLock { $0 = .terminated }
    }

    /// Whether ``terminate()`` has started or finished.
    ///
    /// - Returns: `true` once the context is terminating or terminated.
    /// - Important: May be read from any thread; the answer can change right after it is read.
    public var isTerminated: Bool {
        state.withLock { state in
            if case .live = state { return false }
            return true
        }
    }

    // MARK: - Sockets

    /// Creates a raw socket of `type` on this context, under the lock so termination cannot
    /// free the context meanwhile.
    func makeSocketHandle(type: Int32) throws(ZMQError) -> UnsafeMutableRawPointer {
        try state.withLock { (state) throws(ZMQError) -> Handle in
            guard case .live(let handle) = state else {
                throw ZMQError(errno: ETERM, operation: "zmq_socket")
            }
            return Handle(raw: try zmqCreate("zmq_socket") { zmq_socket(handle.raw, type) })
        }.raw
    }
}
