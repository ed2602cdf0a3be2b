// The state of one channel end: buffered items, waiting receivers and senders, close state, the
// callback and the credit window. A pure struct: it is kept in a Mutex by Channel, every event is a
// mutating method, and what must happen outside the lock (resume, wake, send) is returned.

import DequeModule
import ExecnetValue

/// The flow-control window: how much a sender may have in flight on one channel before the
/// receiver has consumed it. The receiver grants credit back as its user takes items.
package enum FlowWindow {
    /// Messages a sender may have unconsumed at the receiver.
    package static let messages = 1024
    /// Bytes a sender may have unconsumed at the receiver (a single larger message may still go
    /// when nothing else is in flight).
    package static let bytes = 16 << 20
    /// What a receiver holds at most for a drain grant (items granted back unconsumed while
    /// someone waits for the close), per channel: bytes, counting 64 bytes per item.
    package static let drainBytes = 1 << 30
}

/// How a receive ends when it gets no item.
enum ChannelEnd: Sendable {
    /// The remote error, reported once.
    case remoteError(RemoteError)
    /// The peer went away (died, was terminated, was lost): an end of channel with this cause.
    case peerLost(PeerEnd)
    /// Nothing more will come.
    case endOfChannel
}

/// A receiver waiting for an item.
enum ReceiveWaiter {
    case async(id: Int, CheckedContinuation<[UInt8], any Error>)
    case blocking(id: Int, BlockingOutcome<[UInt8]>)

    var id: Int {
        switch self {
        case .async(let id, _), .blocking(let id, _): id
        }
    }

    func resume(_ result: Result<[UInt8], any Error>) {
        switch self {
        case .async(_, let continuation): continuation.resume(with: result)
        case .blocking(_, let outcome): outcome.fulfil(result)
        }
    }
}

/// A sender waiting for credit.
enum SendWaiter {
    case async(id: Int, bytes: Int, CheckedContinuation<Void, any Error>)
    case blocking(id: Int, bytes: Int, BlockingOutcome<Void>)

    var id: Int {
        switch self {
        case .async(let id, _, _), .blocking(let id, _, _): id
        }
    }

    var bytes: Int {
        switch self {
        case .async(_, let bytes, _), .blocking(_, let bytes, _): bytes
        }
    }

    func resume(_ result: Result<Void, any Error>) {
        switch self {
        case .async(_, _, let continuation): continuation.resume(with: result)
        case .blocking(_, _, let outcome): outcome.fulfil(result)
        }
    }
}

/// A waiter for the channel to close.
enum CloseWaiter {
    case async(id: Int, CheckedContinuation<Void, any Error>)
    case blocking(id: Int, BlockingOutcome<Void>)

    var id: Int {
        switch self {
        case .async(let id, _), .blocking(let id, _): id
        }
    }

    func resume(_ result: Result<Void, any Error>) {
        switch self {
        case .async(_, let continuation): continuation.resume(with: result)
        case .blocking(_, let outcome): outcome.fulfil(result)
        }
    }
}

/// A callback registered with `setCallback`, and its endmarker if one was given.
package struct CallbackRegistration: Sendable {
    package let callback: @Sendable (Value) throws -> Void
    /// `nil`: no endmarker. `.some(.none)`: the none value is the endmarker.
    package let endmarker: Value?
    /// Runs after the endmarker step, once (receive queues count ended channels with it).
    package var onEnd: (@Sendable () -> Void)? = nil
    /// Runs the callback on the delivering thread (the I/O thread), under the channel's lock,
    /// instead of on the callback thread. Only for internal callbacks that never block and take
    /// no channel lock: receive queues, which so save a thread hand-off per item.
    package var direct = false

    package init(
        callback: @escaping @Sendable (Value) throws -> Void, endmarker: Value?,
        onEnd: (@Sendable () -> Void)? = nil, direct: Bool = false
    ) {
        self.callback = callback
        self.endmarker = endmarker
        self.onEnd = onEnd
        self.direct = direct
    }

    /// The same registration with its closures dropped, for after the endmarker step: the channel
    /// still counts as a callback channel, but lets go of what the closures captured (a receive
    /// queue's subscription, or a user's callback, usually captures the channel itself).
    package var spent: CallbackRegistration {
        CallbackRegistration(callback: { _ in }, endmarker: nil, onEnd: nil, direct: direct)
    }
}

/// Outcomes of a credit grant that arrived: the senders it unblocks.
struct CreditOutcome {
    var wake: [SendWaiter] = []
}

/// The mutable state of a channel end. See the file comment.
struct ChannelState {
    // MARK: Receive side
    /// Items that arrived and were not yet taken, as raw payloads (decoded by the taker).
    var items: Deque<[UInt8]> = []
    /// Receivers waiting for an item, oldest first.
    var receivers: Deque<ReceiveWaiter> = []
    /// Consumed since the last credit grant to the peer.
    var consumedMessages = 0
    var consumedBytes = 0
    /// Someone waits for the close: queued items are granted back at once (a drain grant).
    var draining = false
    /// Items granted back before they were taken (the oldest queued ones); taking them grants nothing.
    var aheadMessages = 0
    var aheadBytes = 0
    /// Received and not yet granted back: no more than the peer may have in flight, if it is honest.
    var unackedMessages = 0
    var unackedBytes = 0

    // MARK: Close state
    /// This side closed the channel (or the gateway ended).
    var localClosed = false
    /// The peer closed the channel, or its worker died.
    var remoteClosed = false
    /// The error the peer closed with, until it is reported once.
    var pendingError: RemoteError?
    /// Why the peer went away, if it did without closing: every end reported after it carries it.
    var endCause: PeerEnd?
    /// This side's CLOSE or CLOSE_ERROR went out (each side sends one, once).
    var closeSent = false
    /// `setCallback` is replaying queued items on the caller's thread: new items queue behind them.
    var replaying = false
    /// With a callback: the endmarker step ran, so the channel counts as closed.
    var callbackDrained = false
    /// Waiters for the channel to be closed.
    var closeWaiters: [CloseWaiter] = []

    // MARK: Callback
    var callback: CallbackRegistration?
    /// The endmarker was delivered (exactly once).
    var endmarkerDelivered = false

    // MARK: Send side
    /// Credit left to send: messages and bytes.
    var sendMessages = FlowWindow.messages
    var sendBytes = FlowWindow.bytes
    /// Senders waiting for credit, oldest first.
    var senders: Deque<SendWaiter> = []

    /// Whether nothing more will arrive: the peer closed, or this side closed.
    var isEnded: Bool { remoteClosed || localClosed }

    /// Whether the channel counts as closed for `isClosed` and `waitClose`.
    var isClosed: Bool {
        if localClosed { return true }
        guard remoteClosed else { return false }
        return callback == nil || callbackDrained
    }

    /// How a receive ends now that no item is left; the remote error is reported once.
    mutating func takeEnd() -> ChannelEnd {
        if let error = pendingError {
            pendingError = nil
            return .remoteError(error)
        }
        if let endCause { return .peerLost(endCause) }
        return .endOfChannel
    }

    /// Whether a message of `bytes` may be sent now.
    func hasCredit(for bytes: Int) -> Bool {
        sendMessages > 0 && (sendBytes >= bytes || sendBytes >= FlowWindow.bytes)
    }

    /// Takes credit for one message of `bytes`.
    mutating func takeCredit(_ bytes: Int) {
        sendMessages -= 1
        sendBytes -= bytes
    }

    /// Adds credit granted by the peer and returns the senders that may now go, in order.
    mutating func grant(messages: Int, bytes: Int) -> CreditOutcome {
        // Saturating: a peer's grant is not checked here, and no grant may trap on overflow.
        sendMessages = sendMessages.addingReportingOverflow(messages).overflow ? Int.max : sendMessages + messages
        sendBytes = sendBytes.addingReportingOverflow(bytes).overflow ? Int.max : sendBytes + bytes
        var outcome = CreditOutcome()
        while let next = senders.first, hasCredit(for: next.bytes) {
            senders.removeFirst()
            takeCredit(next.bytes)
            outcome.wake.append(next)
        }
        return outcome
    }

    /// Counts a consumed item; returns the grant to send to the peer once half a window is consumed.
    mutating func consume(bytes: Int) -> (messages: Int, bytes: Int)? {
        if aheadMessages > 0 {
            // Granted when it arrived, for a waiter for the close.
            aheadMessages -= 1
            aheadBytes -= bytes
            return nil
        }
        return countConsumed(bytes: bytes)
    }

    private mutating func countConsumed(bytes: Int) -> (messages: Int, bytes: Int)? {
        consumedMessages += 1
        consumedBytes += bytes
        guard consumedMessages >= FlowWindow.messages / 2 || consumedBytes >= FlowWindow.bytes / 2 else {
            return nil
        }
        defer { consumedMessages = 0; consumedBytes = 0 }
        unackedMessages -= consumedMessages
        unackedBytes -= consumedBytes
        return (consumedMessages, consumedBytes)
    }

    /// Counts an item that arrived; `false` if the peer sent beyond the window its credit allows.
    ///
    /// What this side has received and not granted back is never more than what an honest sender
    /// has in flight (the sender learns of grants later), so an honest sender never fails this:
    /// at most ``FlowWindow/messages`` messages, and at most ``FlowWindow/bytes`` bytes unless the
    /// item arrived when nothing else was in flight.
    mutating func noteArrival(bytes: Int) -> Bool {
        defer {
            unackedMessages += 1
            unackedBytes += bytes
        }
        if unackedMessages >= FlowWindow.messages { return false }
        return unackedMessages == 0 || unackedBytes + bytes <= FlowWindow.bytes
    }
}

// MARK: - Drain grants (docs/PROTOCOL.md, "Flow control")

extension ChannelState {
    /// A waiter for the close arrived: grants back every queued item not yet granted, as if taken,
    /// so the sender can finish (up to the drain cap). Returns the grant to send.
    mutating func startDrain() -> (messages: Int, bytes: Int)? {
        guard callback == nil, !isEnded else { return nil }
        draining = true
        var total: (messages: Int, bytes: Int)?
        for item in items.dropFirst(aheadMessages) {
            guard let grant = holdAhead(bytes: item.count) else { continue }
            total = (messages: (total?.messages ?? 0) + grant.messages, bytes: (total?.bytes ?? 0) + grant.bytes)
        }
        return total
    }

    /// An item was queued while draining: grants it back at once (up to the drain cap).
    mutating func drainArrival(bytes: Int) -> (messages: Int, bytes: Int)? {
        draining ? holdAhead(bytes: bytes) : nil
    }

    /// The last waiter for the close left (timeout, cancellation): items queue within the window again.
    mutating func stopDrainIfUnwatched() {
        if closeWaiters.isEmpty { draining = false }
    }

    /// Counts a queued item as consumed ahead of its taker, if the drain cap allows.
    private mutating func holdAhead(bytes: Int) -> (messages: Int, bytes: Int)? {
        guard aheadBytes + (aheadMessages + 1) * 64 + bytes <= FlowWindow.drainBytes else { return nil }
        let grant = countConsumed(bytes: bytes)
        aheadMessages += 1
        aheadBytes += bytes
        return grant
    }
}
