// Tests for ZMQSocket's life and message I/O: ROUTER/DEALER round trips over every transport,
// a 16 MiB message, ROUTER_MANDATORY, closed sockets, and readiness. Each test owns its context
// and runs all its sockets on its own thread.

import Glibc
import Testing
import ZeroMQ

@Suite struct ZMQSocketTests {
    @Test(arguments: Transport.allCases)
    func routerAndDealerExchangeMultipartMessages(over transport: Transport) throws {
        let directory = try TemporaryDirectory()
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try router.setReceiveTimeout(milliseconds: generousWait)
        try dealer.setReceiveTimeout(milliseconds: generousWait)
        try dealer.setRoutingID(Array("dealer-1".utf8))

        let endpoint = try router.bind(transport.bindEndpoint(in: directory))
        try dealer.connect(endpoint)
        #expect(try dealer.send([Array("a".utf8), [], Array("c".utf8)]))

        let request = try #require(try router.receive())
        #expect(request == [Array("dealer-1".utf8), Array("a".utf8), [], Array("c".utf8)])

        #expect(try router.send([request[0], Array("reply".utf8), [0, 1, 2]]))
        let reply = try #require(try dealer.receive())
        #expect(reply == [Array("reply".utf8), [0, 1, 2]])
    }

    @Test(arguments: Transport.allCases)
    func aSixteenMebibyteMessageMakesTheRoundTripIntact(over transport: Transport) throws {
        let directory = try TemporaryDirectory()
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try router.setReceiveTimeout(milliseconds: generousWait)
        try dealer.setReceiveTimeout(milliseconds: generousWait)
        try dealer.connect(try router.bind(transport.bindEndpoint(in: directory)))

        let payload = patternBytes(count: 16 << 20)
        #expect(try dealer.send([payload]))
        let request = try #require(try router.receive())
        try #require(request.count == 2)
        let requestIntact = request[1].withUnsafeBytes { received in
            payload.withUnsafeBytes { sameBytes(received, $0) }
        }
        #expect(requestIntact)

        // The reply comes back as a ZMQMessage, read in place without a copy.
        #expect(try router.send([request[0], request[1]]))
        guard let reply = try dealer.receiveMessage(dontWait: false) else {
            Issue.record("the reply did not arrive within the receive timeout")
            return
        }
        #expect(reply.count == payload.count)
        #expect(reply.hasMore == false)
        let intact = reply.withUnsafeBytes { received in
            payload.withUnsafeBytes { sameBytes(received, $0) }
        }
        #expect(intact)
    }

    @Test func aMandatoryRouterRefusesAnUnknownRoutingID() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        try router.setRouterMandatory(true)
        try router.bind(uniqueInprocEndpoint("mandatory"))

        let error = #expect(throws: ZMQError.self) {
            try router.send([Array("nobody".utf8), Array("hello".utf8)])
        }
        #expect(error?.errno == EHOSTUNREACH)
        #expect(error?.isHostUnreachable == true)
    }

    @Test func aRouterThatIsNotMandatoryDropsUnroutableMessagesQuietly() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        try router.bind(uniqueInprocEndpoint("lenient"))
        #expect(try router.send([Array("nobody".utf8), Array("hello".utf8)]))
    }

    @Test func sendingWithoutWaitingReportsWouldBlockAsFalse() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        // A DEALER with no peer at all cannot queue anything.
        #expect(try dealer.send([[1]], dontWait: true) == false)
        #expect(try dealer.receive(dontWait: true) == nil)
        if let frame = try dealer.receiveMessage(dontWait: true) {
            Issue.record("a frame of \(frame.count) bytes arrived from nowhere")
        }
    }

    @Test func aClosedSocketThrowsNotASocketAndClosesOnlyOnce() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .pair)
        #expect(!socket.isClosed)
        socket.close()
        socket.close()
        #expect(socket.isClosed)

        let error = #expect(throws: ZMQError.self) { try socket.send([[1]]) }
        #expect(error?.errno == ENOTSOCK)
        #expect(throws: ZMQError.self) { try socket.bind(uniqueInprocEndpoint("closed")) }
        #expect(throws: ZMQError.self) { try socket.receive(dontWait: true) }
        #expect(throws: ZMQError.self) { try socket.events }
    }

    @Test func bindingABusyPortThrowsAddressInUse() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let first = try ZMQSocket(context: context, type: .router)
        defer { first.close() }
        let second = try ZMQSocket(context: context, type: .router)
        defer { second.close() }
        let endpoint = try first.bind("tcp://127.0.0.1:*")

        let error = #expect(throws: ZMQError.self) { try second.bind(endpoint) }
        #expect(error?.errno == EADDRINUSE)
        #expect(error?.operation == "zmq_bind")
    }

    @Test func unbindAndDisconnectUndoBindAndConnect() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        try dealer.connect(endpoint)
        try dealer.disconnect(endpoint)
        try router.unbind(endpoint)
        #expect(throws: ZMQError.self) { try router.unbind(endpoint) }
    }

    @Test func eventsAndFileDescriptorReportReadiness() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try dealer.connect(try router.bind(uniqueInprocEndpoint("events")))
        #expect(try router.fileDescriptor >= 0)
        #expect(try !router.events.contains(.readable))

        try dealer.send([Array("ping".utf8)])
        var poller = ZMQPoller()
        poller.add(fileDescriptor: try router.fileDescriptor, events: .readable)
        // The descriptor is edge-triggered and may already have fired, so check events too.
        var readable = try router.events.contains(.readable)
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while !readable && ContinuousClock.now < deadline {
            _ = try poller.poll(timeout: .milliseconds(50))
            readable = try router.events.contains(.readable)
        }
        #expect(readable)
        #expect(try dealer.events.contains(.writable))
    }
}

@Suite struct VisitReceivedFrameTests {
    @Test func framesAreLentInOrderWithTheirMoreFlagAndNothingWaitingIsFalse() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try router.setReceiveTimeout(milliseconds: generousWait)
        try dealer.setRoutingID(Array("d".utf8))
        try dealer.connect(try router.bind(uniqueInprocEndpoint("visit")))
        #expect(try router.visitReceivedFrame(dontWait: true) { _, _ in Issue.record("no frame was sent") } == false)
        try dealer.send([[1, 2], [], [3]])
        var seen: [([UInt8], Bool)] = []
        var more = true
        var first = true
        while more {
            #expect(try router.visitReceivedFrame(dontWait: !first) { bytes, hasMore in
                seen.append((Array(bytes), hasMore))
                more = hasMore
            })
            first = false
        }
        #expect(seen.map(\.0) == [Array("d".utf8), [1, 2], [], [3]])
        #expect(seen.map(\.1) == [true, true, true, false])
    }
}
