// The error every ZeroMQ call throws: libzmq's errno plus the name of the call that failed.
// A plain value, Sendable and Hashable, so it crosses threads and can be compared by tests.
// The one place that turns libzmq return codes into values, errors or traps is ZMQCall.swift.

import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed libzmq call: the errno it reported and the name of the call.
///
/// Errors print as `zmq_bind: Address already in use (errno 98)`. Two errors are equal when
/// both the errno and the operation are equal; ``message`` is derived from the errno and takes
/// no part in equality. Compare codes (``errno`` or the predicates such as ``isTerminated``),
/// never message text, because `zmq_strerror` is locale- and platform-dependent.
///
/// ## What callers should do with the common codes
/// - ``isTerminated`` (`ETERM`): the context is shutting down. Close the socket on its owning
///   thread and leave the loop; this is the normal end of an I/O thread.
/// - ``isHostUnreachable`` (`EHOSTUNREACH`): a ROUTER with ``ZMQSocket/setRouterMandatory(_:)``
///   was asked to send to a routing id that is unknown or no longer connected.
/// - ``isTemporary`` (`EAGAIN`): never thrown by the send and receive calls, which report it as
///   a value (`false` or `nil`); it appears only where no such value exists.
///
/// - Important: `ZMQError` is a value and may be used from any thread.
public struct ZMQError: Error, Hashable, CustomStringConvertible {
    /// The error number libzmq reported (a POSIX errno or a libzmq-specific one such as `ETERM`).
    public let errno: Int32

    /// The libzmq function that failed, for example `zmq_bind` or `zmq_setsockopt(ZMQ_LINGER)`.
    public let operation: String

    /// Creates an error from an error number and the name of the failed operation.
    ///
    /// Use ``last(_:)`` to capture the errno libzmq just reported; this initializer exists for
    /// errors the wrapper raises itself (for example using a closed socket) and for tests.
    ///
    /// - Parameters:
    ///   - errno: The error number.
    ///   - operation: The name of the failed libzmq function.
    /// - Important: May be called from any thread.
    public init(errno: Int32, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    /// The human-readable text for ``errno``, as `zmq_strerror` gives it.
    ///
    /// Derived on demand; it is not part of equality or hashing.
    ///
    /// - Returns: The message, for example `Address already in use`.
    /// - Important: May be called from any thread.
    public var message: String {
        String(cString: zmq_strerror(errno))
    }

    /// The error as one line: operation, message and errno.
    ///
    /// The format is `<operation>: <message> (errno <number>)`, for example
    /// `zmq_bind: Address already in use (errno 98)`.
    ///
    /// - Returns: The one-line description.
    /// - Important: May be called from any thread.
    public var description: String {
        "\(operation): \(message) (errno \(errno))"
    }

    /// Captures the error libzmq reported last on the calling thread.
    ///
    /// Call it immediately after a libzmq function failed, on the same thread, before anything
    /// else can overwrite the thread's errno.
    ///
    /// - Parameters:
    ///   - operation: The name of the libzmq function that just failed.
    /// - Returns: An error holding `zmq_errno()` and `operation`.
    /// - Important: errno is per thread; call this on the thread that made the failed call.
    public static func last(_ operation: String) -> ZMQError {
        ZMQError(errno: zmq_errno(), operation: operation)
    }

    /// Whether the call would have blocked (`EAGAIN`).
    ///
    /// The send and receive calls return `false` or `nil` instead of throwing this, so it is
    /// rarely seen in a thrown error.
    ///
    /// - Returns: `true` when ``errno`` is `EAGAIN`.
    /// - Important: May be called from any thread.
    public var isTemporary: Bool {
        errno == EAGAIN
    }

    /// Whether the socket's context is being terminated (`ETERM`).
    ///
    /// Every blocking call on a socket returns this once ``ZMQContext/shutdown()`` or
    /// ``ZMQContext/terminate()`` has started. The owning thread should close its sockets and
    /// stop using them.
    ///
    /// - Returns: `true` when ``errno`` is `ETERM`.
    /// - Important: May be called from any thread.
    public var isTerminated: Bool {
        errno == ETERM
    }

    /// Whether a ROUTER could not route the message (`EHOSTUNREACH`).
    ///
    /// Thrown by sends on a ROUTER with ``ZMQSocket/setRouterMandatory(_:)`` enabled when the
    /// first frame names a routing id that is not connected.
    ///
    /// - Returns: `true` when ``errno`` is `EHOSTUNREACH`.
    /// - Important: May be called from any thread.
    public var isHostUnreachable: Bool {
        errno == EHOSTUNREACH
    }
}
