// One gateway connection seen from one side: the channel registry and id allocation for that
// gateway, the path to send frames to the peer, and dispatch of the peer's frames to channels.
// The client has one per gateway; a worker has one, to its client.

import Logging
import Synchronization

/// Where a connection's outgoing frames go: the client hub (by routing id) or the worker's DEALER.
protocol FrameTransport: Sendable {
    /// Queues a message for the peer. Returns `false` if the transport has stopped.
    @discardableResult
    func submit(_ message: WireMessage) -> Bool
    /// Whether the caller runs on the I/O thread that owns this transport's socket.
    var isOnIOThread: Bool { get }
    /// The timers of that I/O thread, for timed waits; `nil` if there is none.
    var timers: TimerQueue? { get }
}

/// Which side of a gateway connection this is; it decides channel id parity.
enum ConnectionSide: Sendable {
    /// The side that made the gateway: allocates odd channel ids.
    case client
    /// The worker: allocates even channel ids.
    case worker
}

/// A gateway connection: channels, their ids, and the way to the peer.
///
/// Thread safety: the registry is behind a lock; `dispatch` and `peerEnded` run on the I/O thread,
/// everything else on any thread.
final class PeerConnection: Sendable {
    private struct Registry {
        var channels: [Int32: Channel] = [:]
        /// The channel looked up last: a stream of messages on one channel skips the hash.
        var recent: Channel?
        var nextID: Int32
        /// Set once the peer is gone; new channels start closed with this.
        var ended: RemoteError??
    }

    /// The gateway's id (`gw0`).
    let gatewayID: String
    let side: ConnectionSide
    let transport: any FrameTransport
    let logger: Logger
    /// Where malformed or unexpected channel messages are logged, at most once per kind and interval.
    let rogue: RateLimitedLogger
    /// The largest payload this side sends; larger values fail their send before anything is sent.
    let maxMessageSize: Int
    private let registry: Mutex<Registry>

    init(gatewayID: String, side: ConnectionSide, transport: any FrameTransport, logger: Logger,
         maxMessageSize: Int = defaultMaxMessageSize) {
        self.maxMessageSize = maxMessageSize
        self.gatewayID = gatewayID
        self.side = side
        self.transport = transport
        self.logger = logger
        self.rogue = RateLimitedLogger(logger: logger, timers: transport.timers)
        self.registry = Mutex(Registry(nextID: side == .client ? 1 : 2))
    }

    // MARK: - Channels

    /// Opens a new channel with an id from this side's id space.
    func newChannel(taskName: String? = nil, isTaskChannel: Bool = false) -> Channel {
        registry.withLock { registry in
            let id = registry.nextID
            registry.nextID &+= 2
            let channel = Channel(id: id, connection: self, taskName: taskName, isTaskChannel: isTaskChannel)
            registry.channels[id] = channel
            if let ended = registry.ended { channel.markPeerEnded(ended) }
            return channel
        }
    }

    /// The channel with `id`, created and registered if this side has not seen it yet
    /// (a channel the peer opened and sent over another channel, or the task channel of an EXEC).
    func channel(forID id: Int32, taskName: String? = nil, isTaskChannel: Bool = false) -> Channel {
        registry.withLock { registry in
            if let recent = registry.recent, recent.id == id { return recent }
            if let existing = registry.channels[id] {
                registry.recent = existing
                return existing
            }
            let channel = Channel(id: id, connection: self, taskName: taskName, isTaskChannel: isTaskChannel)
            registry.channels[id] = channel
            registry.recent = channel
            if let ended = registry.ended { channel.markPeerEnded(ended) }
            return channel
        }
    }

    /// The registered channel with `id`, if any.
    func existingChannel(_ id: Int32) -> Channel? {
        registry.withLock { registry in
            if let recent = registry.recent, recent.id == id { return recent }
            return registry.channels[id]
        }
    }

    /// Forgets a channel that both sides have closed.
    func forget(_ channel: Channel) {
        registry.withLock { registry in
            if registry.channels[channel.id] === channel { registry.channels[channel.id] = nil }
            if registry.recent === channel { registry.recent = nil }
        }
    }

    /// The number of channels still open.
    var openChannelCount: Int { registry.withLock { $0.channels.count } }

    // MARK: - Values

    /// Encodes `value` as a channel payload (the serializer's internal form).
    ///
    /// - Throws: ``ExecnetError`` `unencodable`, or `invalidState` for a channel of another gateway.
    func encode(_ value: Value) throws -> [UInt8] {
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
    func decode(_ payload: [UInt8]) throws -> Value {
        try payload.withUnsafeBytes { raw in
            try Serializer.decodeInternal(raw, options: .channelDefault, resolveChannel: { id in
                self.channel(forID: id)
            })
        }
    }

    private func checkChannels(in value: Value) throws {
        switch value {
        case .channel(let channel):
            guard channel.connection === self else {
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
    func send(_ message: WireMessage) {
        if !transport.submit(message) {
            logger.debug("dropped \(message.type) on channel \(message.channelID): transport stopped")
        }
    }

    // MARK: - Incoming (I/O thread)

    /// Routes a channel message from the peer to its channel.
    func dispatch(_ message: WireMessage) {
        switch message.type {
        case .data:
            channel(forID: message.channelID).deliver(message.payload)
        case .close:
            existingChannel(message.channelID)?.remoteClosed(error: nil)
        case .closeError:
            let text: String
            if case .string(let decoded)? = try? decode(message.payload) {
                text = decoded
            } else {
                text = "<undecodable error text>"
            }
            let channel = existingChannel(message.channelID)
            channel?.remoteClosed(error: RemoteError(text, taskName: channel?.taskName, gatewayID: gatewayID))
        case .credit:
            guard case .tuple(let parts)? = try? decode(message.payload), parts.count == 2,
                case .int(let messages) = parts[0], case .int(let bytes) = parts[1],
                messages >= 0, bytes >= 0
            else {
                rogue.warning("dropped a malformed CREDIT", "channel \(message.channelID) from \(gatewayID): \(hexDump(message.payload))")
                return
            }
            existingChannel(message.channelID)?.grantCredit(messages: Int(messages), bytes: Int(bytes))
        default:
            rogue.warning("dropped an unexpected channel message", "\(message.type) on channel \(message.channelID) from \(gatewayID)")
        }
    }

    /// The peer is gone: every channel that has not ended gets `error` (or a plain end if `nil`).
    func peerEnded(_ error: RemoteError?) {
        let channels = registry.withLock { registry -> [Channel] in
            if registry.ended == nil { registry.ended = .some(error) }
            return Array(registry.channels.values)
        }
        for channel in channels.sorted(by: { $0.id < $1.id }) {
            channel.markPeerEnded(error)
        }
    }

    /// Whether the peer has ended.
    var hasPeerEnded: Bool { registry.withLock { $0.ended != nil } }
}

/// A transport that goes nowhere, for channels bound to no gateway.
struct DetachedTransport: FrameTransport {
    func submit(_ message: WireMessage) -> Bool { false }
    var isOnIOThread: Bool { false }
    var timers: TimerQueue? { nil }
}

extension PeerConnection {
    /// The connection of channels that belong to no gateway.
    static let detached = PeerConnection(
        gatewayID: "detached", side: .client, transport: DetachedTransport(), logger: Logger(label: "execnet.detached"))
}
