// Tests for the typed socket options: values read back where libzmq allows it, every setter is
// accepted with the C type libzmq expects, and MAXMSGSIZE keeps an oversized message out.
// Single-threaded; one context per test.

import Glibc
import Testing
import ZeroMQ

@Suite struct ZMQSocketOptionsTests {
    @Test func optionsReadBackAsSet() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .dealer)
        defer { socket.close() }

        #expect(try socket.routingID() == [])
        try socket.setRoutingID([1, 2, 3, 255])
        #expect(try socket.routingID() == [1, 2, 3, 255])

        try socket.setLinger(milliseconds: 150)
        #expect(try socket.linger() == 150)

        #expect(try socket.maxMessageSize() == -1)
        try socket.setMaxMessageSize(5_000_000_000)
        #expect(try socket.maxMessageSize() == 5_000_000_000)
    }

    @Test func bindReturnsTheResolvedEndpoint() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .router)
        defer { socket.close() }
        #expect(try socket.lastEndpoint() == "")

        let endpoint = try socket.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let port = Int(endpoint.dropFirst("tcp://127.0.0.1:".count))
        #expect(port != nil && port! > 0)
        #expect(try socket.lastEndpoint() == endpoint)
    }

    @Test func everySetterIsAccepted() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        try router.setSendHighWaterMark(10)
        try router.setReceiveHighWaterMark(10)
        try router.setSendTimeout(milliseconds: 100)
        try router.setReceiveTimeout(milliseconds: 100)
        try router.setRouterMandatory(true)
        try router.setRouterHandover(true)
        try router.setImmediate(true)
        try router.setHeartbeat(interval: .seconds(1), timeout: .seconds(3), ttl: .seconds(100_000))
        try router.setReconnectInterval(.milliseconds(100), max: .seconds(2))
        try router.setReconnectInterval(.microseconds(10), max: nil)
        try router.setHandshakeInterval(.seconds(5))
        try router.setZAPDomain("execnet")
    }

    @Test func aRoutingIDThatIsTooLongIsRejected() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .dealer)
        defer { socket.close() }
        let error = #expect(throws: ZMQError.self) { try socket.setRoutingID([UInt8](repeating: 7, count: 256)) }
        #expect(error?.errno == EINVAL)
        #expect(error?.operation == "zmq_setsockopt(ZMQ_ROUTING_ID)")
    }

    @Test func aMessageAboveMaxMessageSizeIsNotDelivered() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try router.setMaxMessageSize(1024)
        try router.setReceiveTimeout(milliseconds: generousWait)
        try dealer.connect(try router.bind("tcp://127.0.0.1:*"))

        // A small message proves the connection works before the large one is tried.
        try dealer.send([patternBytes(count: 100)])
        let small = try #require(try router.receive())
        #expect(small.last == patternBytes(count: 100))

        try dealer.send([patternBytes(count: 4096)])
        var poller = ZMQPoller()
        poller.add(router, events: .readable)
        #expect(try poller.poll(timeout: briefWatch) == .timedOut)
    }

    @Test func anUnboundedLingerTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let context = try ZMQContext()
            let socket = try ZMQSocket(context: context, type: .dealer)
            try socket.setLinger(milliseconds: -1)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("Linger must be bounded"))
    }
}
