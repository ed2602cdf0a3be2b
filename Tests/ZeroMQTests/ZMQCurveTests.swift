// Tests for CURVE: Z85 key pairs and derivation, a handshake that carries messages with the
// right server key, and one that carries nothing with a wrong key (watched for a bounded time).
// Skipped, with a reason, only where libzmq lacks CURVE.

import Glibc
import Testing
import ZeroMQ

@Suite(.enabled(if: ZMQCurve.isAvailable, "libzmq was built without CURVE support"))
struct ZMQCurveTests {
    @Test func generatedKeysAreFortyCharactersAndThePublicKeyDerivesFromTheSecret() throws {
        let pair = try ZMQCurve.generateKeyPair()
        #expect(pair.publicKey.utf8.count == 40)
        #expect(pair.secretKey.utf8.count == 40)
        #expect(try ZMQCurve.derivePublicKey(fromSecret: pair.secretKey) == pair.publicKey)
        #expect(try ZMQCurve.generateKeyPair().secretKey != pair.secretKey)
    }

    @Test func aMalformedKeyIsRejected() throws {
        let error = #expect(throws: ZMQError.self) { try ZMQCurve.derivePublicKey(fromSecret: "short") }
        #expect(error?.errno == EINVAL)

        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .dealer)
        defer { socket.close() }
        #expect(throws: ZMQError.self) { try socket.setCurveServerKey("not a key") }
    }

    @Test func aClientWithTheRightServerKeyExchangesMessages() throws {
        let server = try ZMQCurve.generateKeyPair()
        let context = try ZMQContext()
        defer { context.terminate() }
        let (router, dealer) = try makeCurvePair(context, server: server, expectedServerKey: server.publicKey)
        defer {
            router.close()
            dealer.close()
        }
        try router.setReceiveTimeout(milliseconds: generousWait)
        try dealer.setReceiveTimeout(milliseconds: generousWait)

        try dealer.send([Array("secret hello".utf8)])
        let request = try #require(try router.receive())
        #expect(request == [Array("curve-client".utf8), Array("secret hello".utf8)])
        try router.send([request[0], Array("secret reply".utf8)])
        #expect(try dealer.receive() == [Array("secret reply".utf8)])
    }

    @Test func aClientWithAWrongServerKeyIsNeverHeard() throws {
        let server = try ZMQCurve.generateKeyPair()
        let impostor = try ZMQCurve.generateKeyPair()
        let context = try ZMQContext()
        defer { context.terminate() }
        let (router, dealer) = try makeCurvePair(context, server: server, expectedServerKey: impostor.publicKey)
        defer {
            router.close()
            dealer.close()
        }

        try dealer.send([Array("secret hello".utf8)])
        var poller = ZMQPoller()
        poller.add(router, events: .readable)
        #expect(try poller.poll(timeout: briefWatch) == .timedOut)
    }

    /// A CURVE server ROUTER and a client DEALER connected over tcp; the client trusts `expectedServerKey`.
    private func makeCurvePair(
        _ context: ZMQContext,
        server: (publicKey: String, secretKey: String),
        expectedServerKey: String
    ) throws -> (router: ZMQSocket, dealer: ZMQSocket) {
        let client = try ZMQCurve.generateKeyPair()
        let router = try ZMQSocket(context: context, type: .router)
        try router.setCurveServer(true)
        try router.setCurveSecretKey(server.secretKey)
        let endpoint = try router.bind("tcp://127.0.0.1:*")

        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setRoutingID(Array("curve-client".utf8))
        try dealer.setCurveServerKey(expectedServerKey)
        try dealer.setCurvePublicKey(client.publicKey)
        try dealer.setCurveSecretKey(client.secretKey)
        try dealer.connect(endpoint)
        return (router, dealer)
    }
}
