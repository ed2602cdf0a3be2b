// Tests for ZMQError: the one-line description format, the predicates, and equality by errno
// and operation. Message text is compared only where the format itself is under test.

import Glibc
import Testing
import ZeroMQ

@Suite struct ZMQErrorTests {
    @Test func descriptionNamesTheOperationTheMessageAndTheErrno() {
        let error = ZMQError(errno: EADDRINUSE, operation: "zmq_bind")
        #expect(error.description == "zmq_bind: Address already in use (errno \(EADDRINUSE))")
        #expect(error.message == "Address already in use")
    }

    @Test func predicatesRecognizeTheirCodes() {
        #expect(ZMQError(errno: EAGAIN, operation: "zmq_msg_send").isTemporary)
        #expect(ZMQError(errno: EHOSTUNREACH, operation: "zmq_msg_send").isHostUnreachable)
        #expect(!ZMQError(errno: EAGAIN, operation: "zmq_msg_send").isTerminated)
    }

    @Test func aTerminatedContextYieldsATerminatedError() throws {
        let context = try ZMQContext()
        context.terminate()
        let error = #expect(throws: ZMQError.self) {
            _ = try ZMQSocket(context: context, type: .dealer)
        }
        #expect(error?.isTerminated == true)
        #expect(error?.description.hasPrefix("zmq_socket: ") == true)
    }

    @Test func equalityComparesErrnoAndOperation() {
        #expect(ZMQError(errno: EINVAL, operation: "zmq_bind") == ZMQError(errno: EINVAL, operation: "zmq_bind"))
        #expect(ZMQError(errno: EINVAL, operation: "zmq_bind") != ZMQError(errno: EINVAL, operation: "zmq_connect"))
        #expect(ZMQError(errno: EINVAL, operation: "zmq_bind") != ZMQError(errno: EPROTO, operation: "zmq_bind"))
    }

    @Test func lastCapturesTheCallingThreadsErrno() {
        errno = EINVAL
        let error = ZMQError.last("zmq_connect")
        #expect(error == ZMQError(errno: EINVAL, operation: "zmq_connect"))
    }

    @Test func aMalformedEndpointIsReportedWithItsErrno() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .router)
        defer { socket.close() }
        let error = #expect(throws: ZMQError.self) { try socket.connect("bogus://nowhere") }
        #expect(error == ZMQError(errno: EPROTONOSUPPORT, operation: "zmq_connect"))
    }
}
