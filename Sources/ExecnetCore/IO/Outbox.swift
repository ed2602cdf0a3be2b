// The one send path for protocol messages, on every socket that sends them (the hub's ROUTER,
// a worker's DEALER, a client's broker links, the broker's ROUTER): a message that meets a full
// pipe is queued for its destination and sent, in order, when the pipe drains. Nothing is dropped
// silently: a message is sent, queued, or refused with a typed outcome the caller acts on.

import DequeModule
import Logging
import ZeroMQ

/// What became of a message given to an ``Outbox``.
package enum OutboxOutcome: Equatable, Sendable {
    /// libzmq took it.
    case sent
    /// Its destination's pipe was full (or older messages wait for it): it waits in the outbox
    /// and goes, after them, when the pipe drains.
    case queued
    /// The ROUTER's peer is not connected (`ROUTER_MANDATORY` said `EHOSTUNREACH`): not delivered;
    /// the caller decides what that means.
    case unreachable
    /// Refused, and logged: the destination already has `queuedBytes` waiting, and this message
    /// would take it past the outbox's cap. The caller decides (the broker cuts the peer off).
    case overCap(queuedBytes: Int)
    /// The socket failed (logged); not delivered.
    case failed
}

/// A socket's outgoing side: messages straight to libzmq while its pipe takes them, a bounded
/// backlog per destination while it does not.
///
/// On a ROUTER each destination is a peer (its routing id); on a DEALER there is one (`[]`).
/// Per destination the order is FIFO. The backlog is counted in bytes (envelope, header and
/// payload) and capped per destination. With a loop, the outbox drains itself: it watches the
/// socket for writability while it holds messages, and, when a ROUTER is writable for some other
/// peer only, retries on a short timer instead of spinning. Without a loop (unit tests) the
/// caller calls ``flush()``.
///
/// The fast path (no backlog, the pipe takes the message) allocates nothing.
///
/// - Important: Used on its socket's I/O thread only.
package final class Outbox {
    /// A queued message: the frames after the routing id.
    private struct Entry {
        var envelope: [UInt8]?
        var message: WireMessage
        var size: Int
    }

    /// A destination's queued messages, oldest first.
    private struct Queue {
        var entries: Deque<Entry> = []
        var bytes = 0
        /// Messages refused at the cap since the last log line about it.
        var refused = 0
    }

    /// The default cap per destination on the client's and the worker's sockets.
    package static let defaultCap = 256 << 20

    package let socket: ZMQSocket
    /// Whether the socket is a ROUTER (a routing id frame goes first).
    package let routed: Bool
    /// The most bytes queued for one destination.
    package let cap: Int
    package let logger: Logger
    private let loop: IOLoop?
    private var queues: [PeerAddress: Queue] = [:]
    /// Bytes queued over all destinations.
    package private(set) var queuedBytes = 0
    private var watchingWritable = false
    private var retryTimer: TimerHandle?
    private var closed = false

    /// Creates the outbox of `socket`.
    ///
    /// - Parameters:
    ///   - routed: `true` for a ROUTER (destinations are routing ids).
    ///   - cap: The most bytes queued for one destination; past it a message is refused.
    ///   - loop: The socket's loop, which the outbox uses to drain itself; `nil` if the caller
    ///     calls ``flush()``. The socket must already be one of the loop's sources.
    package init(socket: ZMQSocket, routed: Bool, cap: Int = Outbox.defaultCap, logger: Logger, loop: IOLoop?) {
        self.socket = socket
        self.routed = routed
        self.cap = cap
        self.logger = logger
        self.loop = loop
    }

    /// Whether messages wait for a pipe to drain.
    package var hasBacklog: Bool { !queues.isEmpty }

    /// Whether messages wait for `destination`.
    package func hasBacklog(for destination: PeerAddress) -> Bool {
        !queues.isEmpty && queues[destination] != nil
    }

    /// Sends `message` (after `envelope`, a broker's address frame, if given) to `destination`,
    /// after anything already queued for it.
    ///
    /// - Parameter destination: The peer's routing id on a ROUTER; `[]` on a DEALER.
    @discardableResult
    package func send(_ message: WireMessage, envelope: [UInt8]? = nil, to destination: PeerAddress = []) -> OutboxOutcome {
        if closed { return .failed }
        if !queues.isEmpty, queues[destination] != nil {
            return enqueue(message, envelope: envelope, for: destination)
        }
        switch attempt(message, envelope: envelope, to: destination) {
        case .sent: return .sent
        case .full: return enqueue(message, envelope: envelope, for: destination)
        case .unreachable: return .unreachable
        case .failed: return .failed
        }
    }

    /// Retries queued messages in order; stops, per destination, at the first that meets a full pipe.
    ///
    /// - Returns: Whether any message went.
    @discardableResult
    package func flush() -> Bool {
        guard !queues.isEmpty, !closed else { return false }
        var progressed = false
        for destination in Array(queues.keys) {
            while let entry = queues[destination]?.entries.first {
                switch attempt(entry.message, envelope: entry.envelope, to: destination) {
                case .sent:
                    progressed = true
                    queues[destination]!.entries.removeFirst()
                    queues[destination]!.bytes -= entry.size
                    queuedBytes -= entry.size
                    continue
                case .full:
                    break
                case .unreachable, .failed:
                    logger.debug("dropping the backlog of a peer that left", metadata: ["peer": "\(hexDump(destination))"])
                    forget(destination)
                }
                break
            }
            if let queue = queues[destination], queue.entries.isEmpty {
                if queue.refused > 0 { logRefusals(queue.refused, destination) }
                queues[destination] = nil
            }
        }
        return progressed
    }

    /// Forgets a gone peer's backlog.
    package func forget(_ destination: PeerAddress) {
        guard let queue = queues.removeValue(forKey: destination) else { return }
        queuedBytes -= queue.bytes
        if queue.refused > 0 { logRefusals(queue.refused, destination) }
        if queues.isEmpty { stopDraining() }
    }

    /// Destinations with more than `bytes` queued, and how much each has.
    package func peersQueuing(over bytes: Int) -> [(PeerAddress, Int)] {
        queues.filter { $0.value.bytes > bytes }.map { ($0.key, $0.value.bytes) }
    }

    /// Drops what is queued (logged) and stops using the socket; the caller closes it. Call
    /// this before the socket is closed: a drain may be scheduled.
    package func close() {
        if queuedBytes > 0 {
            logger.debug("closing an outbox with messages queued", metadata: ["queued_bytes": "\(queuedBytes)"])
        }
        stopDraining()
        queues = [:]
        queuedBytes = 0
        closed = true
    }

    // MARK: - Sending

    private enum Attempt { case sent, full, unreachable, failed }

    private func attempt(_ message: WireMessage, envelope: [UInt8]?, to destination: PeerAddress) -> Attempt {
        do {
            return try socket.sendWire(message, routingID: routed ? destination : nil, envelope: envelope, dontWait: true)
                ? .sent : .full
        } catch let error as ZMQError where error.isHostUnreachable {
            return .unreachable
        } catch {
            logger.error("send failed: \(error)", metadata: ["message": "\(message.type)"])
            return .failed
        }
    }

    private func enqueue(_ message: WireMessage, envelope: [UInt8]?, for destination: PeerAddress) -> OutboxOutcome {
        let size = (envelope?.count ?? 0) + 5 + message.payload.count
        let queued = queues[destination]?.bytes ?? 0
        if queued + size > cap {
            // One line per run of refusals; the count goes out when the backlog drains or goes.
            if (queues[destination]?.refused ?? 0) == 0 {
                logger.warning("refused a message at the outbox cap: the peer is not reading",
                               metadata: ["peer": "\(hexDump(destination))", "queued_bytes": "\(queued)", "cap": "\(cap)",
                                          "message": "\(message.type)"])
            }
            queues[destination]?.refused += 1
            return .overCap(queuedBytes: queued)
        }
        let wasEmpty = queues.isEmpty
        queues[destination, default: Queue()].entries.append(Entry(envelope: envelope, message: message, size: size))
        queues[destination]!.bytes += size
        queuedBytes += size
        if wasEmpty { watchWritable() }
        return .queued
    }

    private func logRefusals(_ count: Int, _ destination: PeerAddress) {
        logger.warning("refused \(count) messages at the outbox cap", metadata: ["peer": "\(hexDump(destination))"])
    }

    // MARK: - Draining

    /// Watches the socket: it is writable when a pipe has room.
    private func watchWritable() {
        guard let loop, !watchingWritable, retryTimer == nil else { return }
        // Held strongly while watched: the loop lets go when the watch ends (drained, or closed).
        if loop.watchWritable(socket, { self.writable() }) {
            watchingWritable = true
        } else {
            // Not (yet) one of the loop's sources: retry on the timer alone.
            retryLater(loop)
        }
    }

    private func writable() {
        let progressed = flush()
        guard hasBacklog else { return stopDraining() }
        if !progressed, let loop {
            // A ROUTER is writable while any peer's pipe has room, not the one we wait for:
            // retry on a short timer rather than spin on writability.
            loop.watchWritable(socket, nil)
            watchingWritable = false
            retryLater(loop)
        }
    }

    private func retryLater(_ loop: IOLoop) {
        retryTimer = loop.schedule(at: .now.advanced(by: .milliseconds(1))) {
            self.retryTimer = nil
            self.flush()
            if self.hasBacklog && !self.closed { self.watchWritable() }
        }
    }

    private func stopDraining() {
        if watchingWritable { loop?.watchWritable(socket, nil) }
        watchingWritable = false
        retryTimer?.cancel()
        retryTimer = nil
    }
}
