// Tests for the choke point every libzmq call goes through: EINTR is retried (or reported when
// asked), EAGAIN becomes a value, other errnos are thrown, and a rejected handle traps. Also the
// Duration-to-milliseconds rounding used for every timeout.

import Glibc
import Testing
@testable import ZeroMQ

@Suite struct ZMQCallTests {
    /// A stand-in for a libzmq call: fails with each errno in `failures`, then returns `result`.
    private final class ScriptedCall {
        var failures: [Int32]
        let result: Int32
        var attempts = 0

        init(failures: [Int32], result: Int32 = 7) {
            self.failures = failures
            self.result = result
        }

        func callAsFunction() -> Int32 {
            attempts += 1
            guard !failures.isEmpty else { return result }
            errno = failures.removeFirst()
            return -1
        }
    }

    @Test func successReturnsTheCallsResult() throws {
        let call = ScriptedCall(failures: [])
        #expect(try zmqCall("test_call") { call() } == 7)
        #expect(call.attempts == 1)
    }

    @Test func interruptedCallsAreRetried() throws {
        let call = ScriptedCall(failures: [EINTR, EINTR])
        #expect(try zmqCall("test_call") { call() } == 7)
        #expect(call.attempts == 3)
    }

    @Test func interruptsAreReportedWhenAskedFor() throws {
        let call = ScriptedCall(failures: [EINTR])
        guard case .interrupted = try zmqInvoke("test_call", reportInterrupts: true, { call() }) else {
            Issue.record("EINTR was not reported")
            return
        }
        #expect(call.attempts == 1)
    }

    @Test func wouldBlockIsAValueNotAnError() throws {
        let call = ScriptedCall(failures: [EAGAIN])
        #expect(try zmqCall("test_call") { call() } == nil)
    }

    @Test func wouldBlockIsThrownWhereNoValueCanCarryIt() {
        let call = ScriptedCall(failures: [EAGAIN])
        #expect(throws: ZMQError(errno: EAGAIN, operation: "test_call")) {
            try zmqCheck("test_call") { call() }
        }
    }

    @Test func otherFailuresAreThrownWithTheOperationName() {
        let call = ScriptedCall(failures: [EINVAL])
        #expect(throws: ZMQError(errno: EINVAL, operation: "test_call")) {
            try zmqCall("test_call") { call() }
        }
    }

    @Test func aFailedCreationIsThrown() {
        #expect(throws: ZMQError(errno: ENOMEM, operation: "test_create")) {
            try zmqCreate("test_create") {
                errno = ENOMEM
                return nil
            }
        }
    }

    @Test func aRejectedHandleTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = try zmqCall("test_call") {
                errno = ENOTSOCK
                return -1
            }
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("test_call rejected a handle owned by the ZeroMQ module"))
    }

    @Test(arguments: [
        (Duration.zero, Int32(0)),
        (.nanoseconds(1), 1),
        (.microseconds(1500), 2),
        (.milliseconds(250), 250),
        (.seconds(2), 2000),
        (.seconds(-1), 0),
        (.seconds(10_000_000), Int32.max),
    ])
    func durationsRoundUpToWholeMilliseconds(duration: Duration, milliseconds: Int32) {
        #expect(duration.zmqMilliseconds == milliseconds)
    }
}
