// The choke point: every libzmq call in this module goes through `zmqCall`, which decides once
// what each errno means. EINTR is retried, EAGAIN comes back as a value, ETERM and other
// failures are thrown, and ENOTSOCK/EFAULT (a bad handle we passed) trap. Stateless; any thread.

import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a libzmq call came to, once the choke point has classified its errno.
enum ZMQCallOutcome {
    /// The call succeeded and returned this non-negative value.
    case success(Int32)
    /// The call would have blocked (`EAGAIN`).
    case wouldBlock
    /// A signal interrupted the call (`EINTR`) and the caller asked to hear about it.
    case interrupted
}

/// How the choke point treats one failure code.
private enum ZMQFailureAction {
    case retry
    case wouldBlock
    case interrupted
    case fail(ZMQError)
}

/// Classifies `code`, the errno of a failed call named `operation`; traps on our own bugs.
private func classify(_ code: Int32, _ operation: StaticString, reportInterrupts: Bool) -> ZMQFailureAction {
    switch code {
    case EINTR:
        return reportInterrupts ? .interrupted : .retry
    case EAGAIN:
        return .wouldBlock
    case ENOTSOCK, EFAULT:
        // We only ever pass handles we created and have not closed; libzmq rejecting one means
        // this module lost track of ownership, which no caller can recover from.
        preconditionFailure(
            "\(operation) rejected a handle owned by the ZeroMQ module (\(String(cString: zmq_strerror(code)))); "
                + "this is a bug in the ZeroMQ module, not an environment failure."
        )
    default:
        return .fail(ZMQError(errno: code, operation: operation.description))
    }
}

/// Runs a libzmq function that returns an `int`, applying the module's errno policy.
///
/// - Parameters:
///   - operation: The libzmq function's name, used in errors and traps.
///   - reportInterrupts: Return ``ZMQCallOutcome/interrupted`` on `EINTR` instead of retrying.
///   - body: The call; it returns `-1` and sets errno on failure.
/// - Returns: The classified outcome.
/// - Throws: ``ZMQError`` for every failure except `EAGAIN` and `EINTR`.
@inline(__always)
func zmqInvoke(
    _ operation: StaticString,
    reportInterrupts: Bool = false,
    _ body: () -> Int32
) throws(ZMQError) -> ZMQCallOutcome {
    while true {
        let result = body()
        if result != -1 {
            return .success(result)
        }
        switch classify(zmq_errno(), operation, reportInterrupts: reportInterrupts) {
        case .retry: continue
        case .wouldBlock: return .wouldBlock
        case .interrupted: return .interrupted
        case .fail(let error): throw error
        }
    }
}

/// Runs a libzmq function that returns an `int`; `nil` means it would have blocked.
///
/// - Parameters:
///   - operation: The libzmq function's name.
///   - body: The call.
/// - Returns: The call's result, or `nil` on `EAGAIN`.
/// - Throws: ``ZMQError`` for every failure except `EAGAIN` (and `EINTR`, which is retried).
@inline(__always)
@discardableResult
func zmqCall(_ operation: StaticString, _ body: () -> Int32) throws(ZMQError) -> Int32? {
    switch try zmqInvoke(operation, body) {
    case .success(let value): return value
    case .wouldBlock: return nil
    case .interrupted: preconditionFailure("zmqInvoke reported EINTR although it was asked to retry it.")
    }
}

/// Runs a libzmq function that returns `int` and is not expected to block.
///
/// An `EAGAIN` here has no value to become, so it is thrown like any other failure.
///
/// - Parameters:
///   - operation: The libzmq function's name.
///   - body: The call.
/// - Throws: ``ZMQError`` for every failure (`EINTR` is retried).
@inline(__always)
func zmqCheck(_ operation: StaticString, _ body: () -> Int32) throws(ZMQError) {
    if try zmqCall(operation, body) == nil {
        throw ZMQError(errno: EAGAIN, operation: operation.description)
    }
}

/// Runs a libzmq function that cannot fail on arguments this module controls.
///
/// Used for `zmq_msg_init`, `zmq_msg_close` and `zmq_close`: their only documented failures
/// are invalid arguments, which would be our bug, so any failure traps with the call's name.
///
/// - Parameters:
///   - operation: The libzmq function's name.
///   - body: The call.
@inline(__always)
func zmqMustSucceed(_ operation: StaticString, _ body: () -> Int32) {
    do {
        try zmqCheck(operation, body)
    } catch {
        preconditionFailure("\(error): this call cannot fail on arguments the ZeroMQ module controls.")
    }
}

/// Runs a libzmq function that returns a pointer (`zmq_ctx_new`, `zmq_socket`).
///
/// - Parameters:
///   - operation: The libzmq function's name.
///   - body: The call; it returns `NULL` and sets errno on failure.
/// - Returns: The non-null pointer.
/// - Throws: ``ZMQError`` for every failure (`EINTR` is retried).
@inline(__always)
func zmqCreate(
    _ operation: StaticString,
    _ body: () -> UnsafeMutableRawPointer?
) throws(ZMQError) -> UnsafeMutableRawPointer {
    while true {
        if let pointer = body() {
            return pointer
        }
        let code = zmq_errno()
        switch classify(code, operation, reportInterrupts: false) {
        case .retry: continue
        case .wouldBlock, .interrupted: throw ZMQError(errno: code, operation: operation.description)
        case .fail(let error): throw error
        }
    }
}

// MARK: - Time

extension Duration {
    /// This duration in whole milliseconds for a libzmq `int` option or timeout.
    ///
    /// Rounds up, so a positive sub-millisecond duration never becomes "no wait", and clamps
    /// to `0...Int32.max`; negative durations become 0.
    var zmqMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) {
            return 0
        }
        if seconds >= Int64(Int32.max) / 1000 {
            return Int32.max
        }
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        let fraction = (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
        return Int32(clamping: seconds * 1000 + fraction)
    }
}
