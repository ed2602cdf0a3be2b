// Sending on a ROUTER without ever dropping: a message that meets a full pipe is queued for its
// peer and retried on the next loop turn, in order. Used by the embedded hub and the broker.

import DequeModule
import Logging
import ZeroMQ

/// A ROUTER socket's outgoing side with a per-peer backlog.
///
/// - Important: Used on its I/O thread only.
package final class RouterOutbox {
    package let socket: ZMQSocket
    package let logger: Logger
    /// Messages that met a full pipe, per peer, oldest first.
    private var backlog: [PeerAddress: Deque<[[UInt8]]>] = [:]
    /// Bytes in each peer's backlog, and over all peers.
    private var backlogBytes: [PeerAddress: Int] = [:]
    package private(set) var queuedBytes = 0

    package init(socket: ZMQSocket, logger: Logger) {
        self.socket = socket
        self.logger = logger
    }

    /// Whether messages wait for a retry.
    package var hasBacklog: Bool { !backlog.isEmpty }

    /// Sends `frames` to the peer at `address`, after anything already queued for it.
    ///
    /// - Returns: `false` if the peer is not connected (ROUTER_MANDATORY said EHOSTUNREACH); the
    ///   message is then not delivered, and the caller decides what that means.
    @discardableResult
    package func send(_ frames: [[UInt8]], to address: PeerAddress) -> Bool {
        if backlog[address] != nil {
            enqueue(frames, for: address)
            return true
        }
        do {
            if try !socket.send([address] + frames, dontWait: true) {
                enqueue(frames, for: address)
            }
            return true
        } catch let error as ZMQError where error.isHostUnreachable {
            return false
        } catch {
            logger.error("ROUTER send failed: \(error)")
            return false
        }
    }

    /// Retries queued messages in order; stops at the first peer whose pipe is still full.
    package func flush() {
        for address in Array(backlog.keys) {
            while let frames = backlog[address]?.first {
                do {
                    if try !socket.send([address] + frames, dontWait: true) { break }
                } catch {
                    logger.debug("dropping the backlog of a peer that left: \(error)")
                    forget(address)
                    break
                }
                backlog[address]!.removeFirst()
                let size = Self.size(frames)
                backlogBytes[address, default: 0] -= size
                queuedBytes -= size
            }
            if backlog[address]?.isEmpty == true { forget(address) }
        }
    }

    /// Retries the backlog after a loop turn and sets how soon the loop must come back for the rest.
    package func flush(_ loop: IOLoop) {
        guard hasBacklog else { return }
        flush()
        loop.retryInterval = hasBacklog ? .milliseconds(1) : nil
    }

    /// Forgets a gone peer's backlog.
    package func forget(_ address: PeerAddress) {
        backlog[address] = nil
        queuedBytes -= backlogBytes.removeValue(forKey: address) ?? 0
    }

    /// Peers with more than `bytes` queued, and how much each has.
    package func peersQueuing(over bytes: Int) -> [(PeerAddress, Int)] {
        backlogBytes.filter { $0.value > bytes }.map { ($0.key, $0.value) }
    }

    private func enqueue(_ frames: [[UInt8]], for address: PeerAddress) {
        backlog[address, default: []].append(frames)
        let size = Self.size(frames)
        backlogBytes[address, default: 0] += size
        queuedBytes += size
    }

    private static func size(_ frames: [[UInt8]]) -> Int {
        frames.reduce(0) { $0 + $1.count }
    }
}
