// One gateway connection seen from one side: the channel registry and id allocation for that
// gateway, the path to send frames to the peer, and dispatch of the peer's frames to channels.
// The client has one per gateway; a worker has one, to its client.

import ExecnetValue
import Logging
import Synchronization

/// Where a connection's outgoing frames go: the client hub (by routing id) or the worker's DEALER.
package protocol FrameTransport: Sendable {
    /// Queues a message for the peer. Returns `false` if the transport has stopped.
    @discardableResult
    func submit(_ message: WireMessage) -> Bool
    /// Whether the caller runs on the I/O thread that owns this transport's socket.
    var isOnIOThread: Bool { get }
    /// The timers of that I/O thread, for timed waits; `nil` if there is none.
    var timers: TimerQueue? { get }
}

/// Which side of a gateway connection this is; it decides channel id parity.
package enum ConnectionSide: Sendable {
    /// The side that made the gateway: allocates odd channel ids.
    case client
    /// The worker: allocates even channel ids.
    case worker
}

/// A gateway connection: channels, their ids, and the way to the peer.
///
/// Thread safety: the registry is behind a lock; `dispatch` and `peerEnded` run on the I/O thread,
/// everything else on any thread.
@usableFromInline package final class PeerConnection: Sendable {
    private struct Registry {
        /// Channels' shared state; users hold handles (`Channel`), which close a channel still
        /// open when the last one goes.
        var channels: [Int32: ChannelCore] = [:]
        /// The channel looked up last: a stream of messages on one channel skips the hash.
        var recent: ChannelCore?
        var nextID: Int32
        /// Set once the peer is gone; new channels start closed with this.
        var ended: PeerEnd??
        /// Peer channels made by a frame (DATA or CLOSE) that no decoded value has named yet, and
        /// whether they were closed on both sides: they stay registered after that, so the value
        /// that names them finds them, and are let go when it is decoded.
        var unresolved: [Int32: Bool] = [:]
        /// Payload bytes delivered to channels in `unresolved`.
        var unresolvedBytes = 0
        /// Payload bytes delivered to each channel in `unresolved`, to give back when it is named.
        var unresolvedBytesByID: [Int32: Int] = [:]
        /// Set once the peer broke the cap on unnamed channels; fresh peer channels are refused after it.
        var violated = false
        /// Handles of forgotten channels (closed on both sides) that a user still holds: a value
        /// naming one resolves to that same object. An entry goes when its handle goes.
        var retired: [Int32: RetiredHandle] = [:]
    }

    /// A handle of a forgotten channel, held weakly.
    private struct RetiredHandle {
        weak var handle: Channel?
    }

    /// The number of channels registered (open, or closed with items still to be named).
    package var registeredChannelCount: Int { registry.withLock { $0.channels.count } }

    /// The gateway's id (`gw0`).
    package let gatewayID: String
    package let side: ConnectionSide
    package let transport: any FrameTransport
    package let logger: Logger
    /// Where malformed or unexpected channel messages are logged, at most once per kind and interval.
    package let rogue: RateLimitedLogger
    /// The largest payload this side sends; larger values fail their send before anything is sent.
    package let maxMessageSize: Int
    /// The most peer channels made by a frame that no value has named yet (see ``defaultMaxUnnamedPeerChannels``).
    package let maxUnnamedChannels: Int
    /// The most payload bytes queued on such channels (see ``defaultMaxUnnamedPeerBytes``).
    package let maxUnnamedBytes: Int
    private let registry: Mutex<Registry>
    /// Called once, outside every lock, when the peer breaks the unnamed-channel cap: a worker
    /// exits. (The client's hub needs none: ``dispatch(_:)`` tells it.)
    private let violationHandler = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Set when the peer breaks the protocol, until ``dispatch(_:)`` reports it.
    private let violationToReport = Atomic<Bool>(false)

    package init(gatewayID: String, side: ConnectionSide, transport: any FrameTransport, logger: Logger,
         maxMessageSize: Int = defaultMaxMessageSize, maxUnnamedChannels: Int = defaultMaxUnnamedPeerChannels,
         maxUnnamedBytes: Int = defaultMaxUnnamedPeerBytes) {
        self.maxMessageSize = maxMessageSize
        self.maxUnnamedChannels = maxUnnamedChannels
        self.maxUnnamedBytes = maxUnnamedBytes
        self.gatewayID = gatewayID
        self.side = side
        self.transport = transport
        self.logger = logger
        self.rogue = RateLimitedLogger(logger: logger, timers: transport.timers)
        self.registry = Mutex(Registry(nextID: side == .client ? 1 : 2))
    }

    // MARK: - Channels

    /// Opens a new channel with an id from this side's id space.
    package func newChannel(taskName: String? = nil, isTaskChannel: Bool = false) -> Channel {
        // Nothing is called out under the registry lock: ending a channel may forget it, which
        // takes this lock again (and a channel's lock is never taken inside this one).
        let (channel, ended) = registry.withLock { registry -> (ChannelCore, PeerEnd??) in
            let id = registry.nextID
            registry.nextID &+= 2
            let channel = ChannelCore(id: id, connection: self, taskName: taskName, isTaskChannel: isTaskChannel)
            registry.channels[id] = channel
            return (channel, registry.ended)
        }
        let handle = channel.handle()
        if let ended { channel.markPeerEnded(ended) }
        return handle
    }

    /// Whether `id` is in this side's id space (odd for the client, even for the worker).
    package func isOwnID(_ id: Int32) -> Bool {
        (id & 1 == 1) == (side == .client)
    }

    /// The handle of the channel with `id`, created and registered if this side has not seen it yet
    /// (a channel the peer opened and sent over another channel, or the task channel of an EXEC).
    ///
    /// - Parameter resolving: `true` when a channel value in a payload names it: a peer channel
    ///   that ended before any value named it was kept registered for this moment, and is let go now.
    package func channel(forID id: Int32, taskName: String? = nil, isTaskChannel: Bool = false, resolving: Bool = false) -> Channel {
        let (channel, ended) = registry.withLock { registry -> (ChannelCore, PeerEnd??) in
            if let existing = registry.channels[id] {
                registry.recent = existing
                // Named at last: a channel already closed on both sides is let go now.
                if resolving, let bytes = registry.unresolvedBytesByID.removeValue(forKey: id) {
                    registry.unresolvedBytes -= bytes
                }
                if resolving, let closed = registry.unresolved.removeValue(forKey: id), closed {
                    registry.channels[id] = nil
                    registry.recent = nil
                }
                return (existing, nil)
            }
            let channel = ChannelCore(id: id, connection: self, taskName: taskName, isTaskChannel: isTaskChannel)
            registry.channels[id] = channel
            registry.recent = channel
            // Made by a frame, not by a value naming it: keep it until a value names it.
            if !resolving && !isTaskChannel && !isOwnID(id) { registry.unresolved[id] = false }
            return (channel, registry.ended)
        }
        let handle = channel.handle()
        if let ended {
            logger.warning("frame for channel \(id) from \(gatewayID) after the peer ended")
            channel.markPeerEnded(ended)
        }
        return handle
    }

    /// The registered channel with `id`, if any.
    package func existingChannel(_ id: Int32) -> ChannelCore? {
        registry.withLock { registry in
            if let recent = registry.recent, recent.id == id { return recent }
            let found = registry.channels[id]
            if found != nil { registry.recent = found }
            return found
        }
    }

    /// Forgets a channel that both sides have closed.
    package func forget(_ channel: ChannelCore) {
        // Taken before the registry's lock (a channel's lock is never taken inside it), and let go
        // after it: the last handle's deinit takes the registry's lock.
        let handle = channel.currentHandle()
        registry.withLock { registry in
            if registry.unresolved[channel.id] != nil {
                registry.unresolved[channel.id] = true
                return
            }
            if registry.channels[channel.id] === channel {
                registry.channels[channel.id] = nil
                if let handle { registry.retired[channel.id] = RetiredHandle(handle: handle) }
            }
            if registry.recent === channel { registry.recent = nil }
        }
        withExtendedLifetime(handle) {}
    }

    /// The last handle of channel `id` went: a retired entry for it goes too.
    func handleGone(_ id: Int32) {
        // A live handle loaded here is let go after unlocking (its deinit would take this lock).
        let live = registry.withLock { registry -> Channel? in
            guard let entry = registry.retired[id] else { return nil }
            if let handle = entry.handle { return handle }
            registry.retired[id] = nil
            return nil
        }
        withExtendedLifetime(live) {}
    }

    /// The handle of a forgotten channel `id` that a user still holds, if any.
    private func retiredHandle(_ id: Int32) -> Channel? {
        registry.withLock { $0.retired[id]?.handle }
    }

    /// The number of channels still open.
    package var openChannelCount: Int { registry.withLock { $0.channels.count } }

    /// The number of peer channels made by a frame that no value has named yet.
    package var unnamedPeerChannelCount: Int { registry.withLock { $0.unresolved.count } }

    /// Sets what happens when the peer breaks the protocol: the unnamed-channel cap or a channel's
    /// flow-control window (after every channel has ended).
    package func onProtocolViolation(_ handler: @escaping @Sendable (String) -> Void) {
        violationHandler.withLock { $0 = handler }
    }

    /// The channel a DATA (`bytes` long) or CLOSE from the peer is for: a registered one, or a new
    /// channel of the peer's parity, kept until a value names it. `nil` for an id this side never
    /// opened, and for a frame past the cap on unnamed peer channels or their queued bytes: the
    /// peer is lying (an honest peer names its channels in values), so every channel ends and the
    /// violation handler runs, once.
    private func channelForPeerFrame(_ id: Int32, bytes: Int) -> ChannelCore? {
        enum Lookup { case found(ChannelCore, PeerEnd??), unknown, refused(String?) }
        let lookup = registry.withLock { registry -> Lookup in
            let existing = registry.recent?.id == id ? registry.recent : registry.channels[id]
            if let existing, registry.unresolved[id] == nil {
                registry.recent = existing
                return .found(existing, nil)
            }
            guard id > 0 && !isOwnID(id) else { return .unknown }
            let isNew = existing == nil
            if registry.violated { return .refused(nil) }
            if isNew && registry.unresolved.count >= maxUnnamedChannels {
                registry.violated = true
                return .refused("protocol violation: too many unnamed channels (over \(maxUnnamedChannels))")
            }
            if registry.unresolvedBytes + bytes > maxUnnamedBytes {
                registry.violated = true
                return .refused("protocol violation: too many bytes on unnamed channels (over \(maxUnnamedBytes))")
            }
            registry.unresolvedBytes += bytes
            registry.unresolvedBytesByID[id, default: 0] += bytes
            if let existing {
                registry.recent = existing
                return .found(existing, nil)
            }
            let channel = ChannelCore(id: id, connection: self, taskName: nil, isTaskChannel: false)
            registry.channels[id] = channel
            registry.recent = channel
            registry.unresolved[id] = false
            return .found(channel, registry.ended)
        }
        switch lookup {
        case .found(let channel, let ended):
            if let ended {
                logger.warning("frame for channel \(id) from \(gatewayID) after the peer ended")
                channel.markPeerEnded(ended)
            }
            return channel
        case .unknown:
            return nil
        case .refused(let violation):
            guard let violation else {
                logger.debug("dropped a frame for unnamed channel \(id) from \(gatewayID): the peer broke the cap")
                return nil
            }
            endForViolation(violation)
            return nil
        }
    }

    /// The peer broke the protocol (for example, sent beyond a channel's flow-control window): every
    /// channel ends with `violation` as its cause and the violation handler runs, once.
    package func reportViolation(_ violation: String) {
        let first = registry.withLock { registry -> Bool in
            defer { registry.violated = true }
            return !registry.violated
        }
        if first { endForViolation(violation) }
    }

    private func endForViolation(_ violation: String) {
        logger.error("\(violation) from \(gatewayID); ending the connection")
        peerEnded(PeerEnd(violation, gatewayID: gatewayID))
        violationToReport.store(true, ordering: .releasing)
        violationHandler.withLock { $0 }?(violation)
    }

    // MARK: - Values

    /// Encodes `value` as a channel payload (the serializer's internal form).
    ///
    /// - Throws: ``ExecnetError`` `unencodable`, or `invalidState` for a channel of another gateway.
    package func encode(_ value: Value) throws -> [UInt8] {
        try checkChannels(in: value)
        var buffer: [UInt8] = []
        do {
            try Serializer.encodeInternal(value, into: &buffer)
        } catch {
            throw ExecnetError(.unencodable, "cannot serialize the value: \(error)", gatewayID: gatewayID, cause: error)
        }
        guard buffer.count <= maxMessageSize else {
            throw ExecnetError(.messageTooLarge, "a message of \(buffer.count) bytes is over the limit of \(maxMessageSize) bytes",
                               gatewayID: gatewayID)
        }
        return buffer
    }

    /// Decodes a channel payload; channel references resolve in this connection.
    package func decode(_ payload: [UInt8]) throws -> Value {
        try payload.withUnsafeBytes { raw in
            try Serializer.decodeInternal(raw, options: .channelDefault, resolveChannel: { id in
                self.resolveChannel(id)
            })
        }
    }

    private func checkChannels(in value: Value) throws {
        switch value {
        case .channel(let channel):
            guard channel.core.connection === self else {
                throw ExecnetError(
                    .invalidState, "channel \(channel.id) belongs to gateway \(channel.connection.gatewayID), not to \(gatewayID)",
                    gatewayID: gatewayID, channelID: channel.id)
            }
        case .list(let items), .tuple(let items):
            for item in items { try checkChannels(in: item) }
        case .dict(let dict):
            for (key, item) in dict { try checkChannels(in: key); try checkChannels(in: item) }
        case .set(let items), .frozenSet(let items):
            for item in items { try checkChannels(in: item) }
        default:
            break
        }
    }

    // MARK: - Sending

    /// Sends a message to the peer.
    package func send(_ message: WireMessage) {
        if !transport.submit(message) {
            logger.debug("dropped \(message.type) on channel \(message.channelID): transport stopped")
        }
    }

    // MARK: - Incoming (I/O thread)

    /// Routes a channel message from the peer to its channel.
    ///
    /// A frame for an id this side never opened (or that is not a channel id at all) is logged and
    /// dropped; so is anything for a channel that has ended. Nothing a peer sends ends this process.
    ///
    /// - Returns: Whether the peer broke the protocol (this frame, or one before it that no call
    ///   reported yet): every channel has ended, and the caller should cut the peer off. Reported once.
    @discardableResult
    package func dispatch(_ message: WireMessage) -> Bool {
        dispatchFrame(message)
        guard violationToReport.load(ordering: .relaxed) else { return false }
        return violationToReport.exchange(false, ordering: .acquiring)
    }

    private func dispatchFrame(_ message: WireMessage) {
        let id = message.channelID
        switch message.type {
        case .data:
            // A registered channel, or the first item of a channel the peer opened.
            if let channel = channelForPeerFrame(id, bytes: message.payload.count) {
                channel.deliver(message.payload)
            } else if !(id > 0 && !isOwnID(id)) {
                dropRogue(message, "a channel this side never opened")
            }
        case .close, .closeError:
            var error: RemoteError?
            if message.type == .closeError {
                let text: String
                if case .string(let decoded)? = try? decode(message.payload) {
                    text = decoded
                } else {
                    text = "<undecodable error text>"
                }
                error = RemoteError(text, taskName: existingChannel(id)?.taskName, gatewayID: gatewayID)
            }
            // A channel the peer opened and closed before sending anything on it or naming it in a
            // value here is kept until a value names it, and our close lets the peer forget it.
            if let channel = channelForPeerFrame(id, bytes: 0) {
                channel.remoteClosed(error: error, reply: true)
            } else if id > 0 && !isOwnID(id) {
                break
            } else {
                dropRogue(message, "a channel this side never opened or already forgot")
            }
        case .credit:
            guard case .tuple(let parts)? = try? decode(message.payload), parts.count == 2,
                case .int(let messages) = parts[0], case .int(let bytes) = parts[1],
                messages >= 0, bytes >= 0
            else {
                rogue.warning("dropped a malformed CREDIT", "channel \(id) from \(gatewayID): \(hexDump(message.payload))")
                return
            }
            guard let channel = existingChannel(id) else {
                dropRogue(message, "a channel that is not open")
                return
            }
            channel.grantCredit(messages: Int(messages), bytes: Int(bytes))
        default:
            rogue.warning("dropped an unexpected channel message", "\(message.type) on channel \(id) from \(gatewayID)")
        }
    }

    /// Logs and drops a frame the protocol does not allow here.
    private func dropRogue(_ message: WireMessage, _ reason: String) {
        rogue.warning("dropped \(message.type): \(reason)", "channel \(message.channelID) from \(gatewayID)")
    }

    /// The channel a decoded channel value names. An id of this side's own space that is not
    /// registered (a channel both sides closed, or an id the peer made up) gives a channel that
    /// has ended and is not registered: sending on it fails, receiving reports its end.
    private func resolveChannel(_ id: Int32) -> Channel {
        if existingChannel(id) == nil, let held = retiredHandle(id) { return held }
        if isOwnID(id), existingChannel(id) == nil {
            logger.debug("channel value names channel \(id) of \(gatewayID), which is not open here")
            let channel = ChannelCore(id: id, connection: self, taskName: nil, isTaskChannel: false)
            channel.endDetached()
            return channel.handle()
        }
        return channel(forID: id, resolving: true)
    }

    /// The peer is gone: every channel that has not ended ends with `cause` (or a plain end if `nil`).
    package func peerEnded(_ error: PeerEnd?) {
        let channels = registry.withLock { registry -> [ChannelCore] in
            if registry.ended == nil { registry.ended = .some(error) }
            return Array(registry.channels.values)
        }
        for channel in channels.sorted(by: { $0.id < $1.id }) {
            channel.markPeerEnded(error)
        }
    }

    /// Whether the peer has ended.
    package var hasPeerEnded: Bool { registry.withLock { $0.ended != nil } }
}

/// The default cap on channels a peer opened by a frame (DATA or CLOSE) that no decoded value
/// has named yet, per connection. Past it the peer is taken for a liar and the connection ends.
let defaultMaxUnnamedPeerChannels = 1_024

/// The default cap on payload bytes queued on such channels, per connection (64 MiB).
let defaultMaxUnnamedPeerBytes = 64 << 20

/// A transport that goes nowhere, for channels bound to no gateway.
struct DetachedTransport: FrameTransport {
    func submit(_ message: WireMessage) -> Bool { false }
    var isOnIOThread: Bool { false }
    var timers: TimerQueue? { nil }
}

extension PeerConnection {
    /// The connection of channels that belong to no gateway.
    package static let detached = PeerConnection(
        gatewayID: "detached", side: .client, transport: DetachedTransport(), logger: Logger(label: "execnet.detached"))
}
