// The one outbox, with real sockets: a full pipe (small high-water mark, a peer not reading)
// queues messages in order, per destination; when the peer reads, everything arrives in order;
// at the cap a message is refused with a typed, logged outcome; an I/O thread's outbox drains
// itself when the socket becomes writable.

@testable import ExecnetCore
import ExecnetTestSupport
import Logging
import Synchronization
import Testing
import ZeroMQ

@Suite struct OutboxTests {
    /// A ROUTER with a tiny pipe towards DEALER peers with tiny pipes, on inproc.
    final class Pipes {
        let context: ZMQContext
        let router: ZMQSocket
        var peers: [ZMQSocket] = []

        init(_ name: String, peers ids: [[UInt8]]) throws {
            context = try ZMQContext()
            router = try ZMQSocket(context: context, type: .router)
            try router.setRouterMandatory(true)
            try router.setSendHighWaterMark(2)
            try router.setLinger(milliseconds: 0)
            _ = try router.bind("inproc://\(name)")
            for id in ids {
                let peer = try ZMQSocket(context: context, type: .dealer)
                try peer.setRoutingID(id)
                try peer.setReceiveHighWaterMark(2)
                try peer.setLinger(milliseconds: 0)
                try peer.connect("inproc://\(name)")
                // The ROUTER knows a peer once it has heard from it.
                #expect(try peer.sendWire(WireMessage(channelID: 0, type: .heartbeat, payload: []), routingID: nil, dontWait: true))
                let hello = try #require(try Self.spin { try self.router.receiveWire(routed: true) })
                #expect(hello.routingID == id)
                peers.append(peer)
            }
        }

        deinit {
            for peer in peers { peer.close() }
            router.close()
        }

        /// A result that inproc has delivered by the time it is asked for: bounded non-blocking tries.
        static func spin<T>(_ body: () throws -> T?) rethrows -> T? {
            for _ in 0..<10_000 {
                if let value = try body() { return value }
            }
            return nil
        }
    }

    static func item(_ index: Int, size: Int = 10) -> WireMessage {
        var payload = [UInt8](repeating: 0, count: size)
        payload[0] = UInt8(truncatingIfNeeded: index)
        payload[1] = UInt8(truncatingIfNeeded: index >> 8)
        return WireMessage(channelID: 1, type: .data, payload: payload)
    }

    static func index(of message: WireMessage) -> Int { Int(message.payload[0]) | Int(message.payload[1]) << 8 }

    /// Reads everything `peer` gets, flushing the outbox whenever nothing is waiting, until
    /// `count` messages arrived or a bounded number of rounds passed.
    static func drain(_ peer: ZMQSocket, _ outbox: Outbox, count: Int) throws -> [WireMessage] {
        var received: [WireMessage] = []
        for _ in 0..<1_000_000 where received.count < count {
            if let next = try peer.receiveWire(routed: false) {
                received.append(try next.get())
            } else {
                outbox.flush()
            }
        }
        return received
    }

    @Test func aFullPipeQueuesAndEverythingArrivesInOrderOnceThePeerReads() throws {
        let a: [UInt8] = [0x61], b: [UInt8] = [0x62]
        let pipes = try Pipes("outbox-order", peers: [a, b])
        let outbox = Outbox(socket: pipes.router, routed: true, logger: Logger(label: "test"), loop: nil)
        var outcomes: [OutboxOutcome] = []
        for index in 0..<200 { outcomes.append(outbox.send(Self.item(index), to: a)) }
        // The pipe took a few; the rest wait, in order, counted in bytes (header 5 + payload 10).
        let sent = outcomes.prefix { $0 == .sent }.count
        #expect(sent >= 1 && sent < 200)
        #expect(outcomes.dropFirst(sent).allSatisfy { $0 == .queued })
        #expect(outbox.hasBacklog(for: a) && !outbox.hasBacklog(for: b))
        #expect(outbox.queuedBytes == (200 - sent) * 15)
        #expect(outbox.peersQueuing(over: 0).map(\.0) == [a])
        // Another destination is not held up behind a's backlog.
        #expect(outbox.send(Self.item(7), to: b) == .sent)
        #expect(try Pipes.spin { try pipes.peers[1].receiveWire(routed: false) }?.get().payload == Self.item(7).payload)
        // A flush while a still does not read moves nothing.
        #expect(!outbox.flush())
        // a reads: all 200 arrive, in the order sent, and the outbox is empty.
        let received = try Self.drain(pipes.peers[0], outbox, count: 200)
        #expect(received.map(Self.index(of:)) == Array(0..<200))
        #expect(!outbox.hasBacklog && outbox.queuedBytes == 0)
        // A message after the backlog drained goes straight out again.
        #expect(outbox.send(Self.item(200), to: a) == .sent)
    }

    @Test func aDealersOutboxKeepsItsOrderWithAnEnvelope() throws {
        // A DEALER with a full pipe towards a ROUTER that does not read (a client's broker link).
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close(); router.close() }
        try router.setReceiveHighWaterMark(2)
        try dealer.setSendHighWaterMark(2)
        try router.setLinger(milliseconds: 0)
        try dealer.setLinger(milliseconds: 0)
        _ = try router.bind("inproc://outbox-dealer")
        try dealer.connect("inproc://outbox-dealer")
        let outbox = Outbox(socket: dealer, routed: false, logger: Logger(label: "test"), loop: nil)
        let outcomes = (0..<100).map { outbox.send(Self.item($0), envelope: [0xee]) }
        #expect(outcomes.contains(.queued) && outbox.queuedBytes > 0)
        var received: [[[UInt8]]] = []
        for _ in 0..<1_000_000 where received.count < 100 {
            if let frames = try router.receive(dontWait: true) { received.append(frames) } else { outbox.flush() }
        }
        #expect(received.count == 100)
        #expect(received.allSatisfy { $0.count == 5 && $0[1] == [0xee] })
        #expect(try received.map { Self.index(of: try WireMessage.parse($0.dropFirst(2))) } == Array(0..<100))
        #expect(!outbox.hasBacklog)
    }

    @Test func atTheCapAMessageIsRefusedWithATypedLoggedOutcome() throws {
        let a: [UInt8] = [0x61]
        let pipes = try Pipes("outbox-cap", peers: [a])
        let lines = LogLines()
        // Room for three queued messages of 15 bytes.
        let outbox = Outbox(socket: pipes.router, routed: true, cap: 45, logger: lines.logger(label: "outbox-test"), loop: nil)
        var sent = 0
        while outbox.send(Self.item(sent), to: a) == .sent { sent += 1 }
        // The one that met the full pipe was queued; two more fit; then the cap.
        #expect(outbox.send(Self.item(sent + 1), to: a) == .queued)
        #expect(outbox.send(Self.item(sent + 2), to: a) == .queued)
        #expect(outbox.send(Self.item(sent + 3), to: a) == .overCap(queuedBytes: 45))
        #expect(outbox.send(Self.item(sent + 4), to: a) == .overCap(queuedBytes: 45))
        #expect(outbox.queuedBytes == 45)
        // One warning for the run of refusals, naming the cap.
        #expect(lines.count(containing: "refused a message at the outbox cap") == 1)
        // What was accepted arrives, in order; the refused ones do not; the count is logged at the drain.
        let received = try Self.drain(pipes.peers[0], outbox, count: sent + 3)
        #expect(received.map(Self.index(of:)) == Array(0...(sent + 2)))
        #expect(try pipes.peers[0].receiveWire(routed: false) == nil)
        #expect(lines.count(containing: "refused 2 messages at the outbox cap") == 1)
    }

    @Test func aPeerThatIsNotConnectedIsUnreachableAndAClosedOutboxSendsNothing() throws {
        let pipes = try Pipes("outbox-unreachable", peers: [[0x61]])
        let outbox = Outbox(socket: pipes.router, routed: true, logger: Logger(label: "test"), loop: nil)
        #expect(outbox.send(Self.item(0), to: [0x7a]) == .unreachable)
        #expect(!outbox.hasBacklog)
        outbox.close()
        #expect(outbox.send(Self.item(1), to: [0x61]) == .failed)
        #expect(try pipes.peers[0].receiveWire(routed: false) == nil)
    }

    @Test func anIOThreadsOutboxDrainsItselfWhenTheSocketBecomesWritable() async throws {
        let context = try ZMQContext()
        let peer = try ZMQSocket(context: context, type: .dealer)
        defer { peer.close() }
        try peer.setRoutingID([0x61])
        try peer.setReceiveHighWaterMark(2)
        try peer.setLinger(milliseconds: 0)
        let sender = try IOThread(name: "outbox-test") { try SenderRole(context: context, count: 300) }
        try peer.connect("inproc://outbox-thread")
        // The hello makes the role send 300 messages at once: most meet the full pipe and queue.
        #expect(try peer.sendWire(WireMessage(channelID: 0, type: .heartbeat, payload: []), routingID: nil, dontWait: true))
        var received: [Int] = []
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while received.count < 300 && ContinuousClock.now < deadline {
            // Nobody flushes here: the role's loop drains the outbox as the pipe has room.
            if let next = try peer.receiveWire(routed: false) {
                received.append(Self.index(of: try next.get()))
            } else {
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        #expect(received == Array(0..<300))
        await sender.stopAndWait()
        let queued = SenderRole.queuedAtSomePoint.load(ordering: .relaxed)
        #expect(queued)
    }
}

/// An I/O-thread role with a ROUTER and its outbox: on a peer's first message it sends `count`
/// items to it at once.
private final class SenderRole: IOThreadRole {
    enum Command: Sendable { case none }
    static let queuedAtSomePoint = Atomic<Bool>(false)
    let context: ZMQContext
    let count: Int
    var router: ZMQSocket?
    var outbox: Outbox?

    init(context: ZMQContext, count: Int) throws {
        self.context = context
        self.count = count
    }

    func setUp(_ loop: IOLoop) throws {
        let router = try ZMQSocket(context: context, type: .router)
        try router.setRouterMandatory(true)
        try router.setSendHighWaterMark(2)
        try router.setLinger(milliseconds: 0)
        _ = try router.bind("inproc://outbox-thread")
        self.router = router
        loop.addSocket(router) { [unowned self] in self.readable() }
        outbox = Outbox(socket: router, routed: true, logger: Logger(label: "test"), loop: loop)
    }

    private func readable() {
        guard let router, let outbox else { return }
        while let hello = try? router.receiveWire(routed: true) {
            for index in 0..<count {
                if outbox.send(OutboxTests.item(index), to: hello.routingID) == .queued {
                    Self.queuedAtSomePoint.store(true, ordering: .relaxed)
                }
            }
        }
    }

    func handle(_ command: Command, _ loop: IOLoop) {}
    func afterWakeUp(_ loop: IOLoop) {}

    func tearDown(_ loop: IOLoop) {
        outbox?.close()
        router?.close()
    }
}
