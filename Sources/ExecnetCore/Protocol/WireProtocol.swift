// The frame protocols between a client (or broker) ROUTER and a worker DEALER, and between the
// broker and its peers: our mdp.h. Two protocols share the frames: the gateway protocol (client
// and worker: channels and the exit handshake) and the broker protocol (registration, spawning,
// liveness). Pure values and the frame codec; no I/O. docs/PROTOCOL.md describes the same frames.

/// The version of the frame protocol. A worker says it in its hello; a client refuses any other.
package let wireProtocolVersion: Int64 = 2

/// A message type of the gateway protocol: between a client and a worker (docs/PROTOCOL.md,
/// "Channel and gateway messages"). A broker forwards these without acting on them.
package enum GatewayMessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Worker to client, first message: protocol version and the worker's identity (a dict).
    case hello = 1
    /// Client to worker: start a task on a new channel; payload `(name, args, kwargs)`.
    case exec = 2
    /// Either way: one item on a channel; payload is the item.
    case data = 3
    /// Either way: the sender closed the channel; no payload.
    case close = 4
    /// Either way: the sender closed the channel with an error; payload is the text.
    case closeError = 5
    /// Either way: the receiver consumed items and grants that much more window; payload `(messages, bytes)`.
    case credit = 6
    /// Client to worker: report status on the given (fresh) channel; no payload.
    case status = 7
    /// Client to worker: exit now; no payload.
    case terminate = 8
    /// Worker to client: the worker's last message before it exits; no payload.
    case bye = 9
    /// Client to worker: `bye` was received, so everything the worker sent has arrived; no payload.
    case farewell = 10

    /// Whether the message belongs to a channel (its channel id is the channel's, never 0).
    package var isChannelMessage: Bool {
        switch self {
        case .exec, .data, .close, .closeError, .credit, .status: true
        case .hello, .terminate, .bye, .farewell: false
        }
    }

    package var description: String {
        switch self {
        case .hello: "HELLO"
        case .exec: "EXEC"
        case .data: "DATA"
        case .close: "CLOSE"
        case .closeError: "CLOSE_ERROR"
        case .credit: "CREDIT"
        case .status: "STATUS"
        case .terminate: "TERMINATE"
        case .bye: "BYE"
        case .farewell: "FAREWELL"
        }
    }
}

/// A message type of the broker protocol: between the broker and its clients, agents and
/// workers (docs/PROTOCOL.md, "Broker messages"). Its bytes follow the gateway protocol's.
package enum BrokerMessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Either way between the broker and any peer: "still alive"; sent only when nothing else was sent.
    case heartbeat = 11
    /// Client to broker, first message: `{protocol, pid, hostname}`.
    case clientHello = 12
    /// Broker to client or agent: registration accepted; `{protocol, heartbeat_ms, liveness, max_message_size}`.
    case welcome = 13
    /// Client to broker, then broker to agent: start a worker; `{address, gateway, host?, chdir?, nice?, env, worker?}`.
    case spawn = 14
    /// Agent to broker: the worker process started; `{address, pid, host}`.
    case spawned = 15
    /// Broker or agent to client: the worker could not be started; payload is the reason (a string).
    case spawnFailed = 16
    /// Broker to client: a worker is gone; `{cause, exited?, signaled?, heartbeat?}`.
    case peerLost = 17
    /// Client to broker, then broker to agent: signal a worker; `{address, signal}`.
    case kill = 18
    /// Agent to broker, first message: `{protocol, name, slots, hostname, pid}`.
    case agentHello = 19
    /// Agent to broker: a worker exited; `{address, exited?, signaled?}`.
    case workerExited = 20
    /// Broker to a peer it does not know (it restarted, or the peer expired): register again.
    case unknownPeer = 21
    /// To the broker and back: the broker's status table (a dict).
    case brokerStatus = 22
    /// Agent to broker, only to a broker whose WELCOME asked for it (`load_report_ms`): the host's
    /// load; `{host, load1, load5, load15, cpus, memory_available, memory_total}` (``LoadReport``).
    case loadReport = 23

    package var description: String {
        switch self {
        case .heartbeat: "HEARTBEAT"
        case .clientHello: "CLIENT_HELLO"
        case .welcome: "WELCOME"
        case .spawn: "SPAWN"
        case .spawned: "SPAWNED"
        case .spawnFailed: "SPAWN_FAILED"
        case .peerLost: "PEER_LOST"
        case .kill: "KILL"
        case .agentHello: "AGENT_HELLO"
        case .workerExited: "WORKER_EXITED"
        case .unknownPeer: "UNKNOWN_PEER"
        case .brokerStatus: "BROKER_STATUS"
        case .loadReport: "LOAD_REPORT"
        }
    }
}

/// The type frame of a message: a type of the gateway protocol or of the broker protocol.
///
/// Code that handles one protocol switches on `.gateway(…)` or `.broker(…)`; the shorthands
/// (`.data`, `.heartbeat`, …) name a type without saying its protocol, for building messages.
package enum MessageType: Hashable, Sendable, CustomStringConvertible {
    case gateway(GatewayMessageType)
    case broker(BrokerMessageType)

    /// The type byte on the wire; `nil` for a byte neither protocol defines.
    package init?(rawValue: UInt8) {
        if let type = GatewayMessageType(rawValue: rawValue) {
            self = .gateway(type)
        } else if let type = BrokerMessageType(rawValue: rawValue) {
            self = .broker(type)
        } else {
            return nil
        }
    }

    /// The type byte on the wire.
    package var rawValue: UInt8 {
        switch self {
        case .gateway(let type): type.rawValue
        case .broker(let type): type.rawValue
        }
    }

    package var description: String {
        switch self {
        case .gateway(let type): type.description
        case .broker(let type): type.description
        }
    }

    package static var hello: Self { .gateway(.hello) }
    package static var exec: Self { .gateway(.exec) }
    package static var data: Self { .gateway(.data) }
    package static var close: Self { .gateway(.close) }
    package static var closeError: Self { .gateway(.closeError) }
    package static var credit: Self { .gateway(.credit) }
    package static var status: Self { .gateway(.status) }
    package static var terminate: Self { .gateway(.terminate) }
    package static var bye: Self { .gateway(.bye) }
    package static var farewell: Self { .gateway(.farewell) }
    package static var heartbeat: Self { .broker(.heartbeat) }
    package static var clientHello: Self { .broker(.clientHello) }
    package static var welcome: Self { .broker(.welcome) }
    package static var spawn: Self { .broker(.spawn) }
    package static var spawned: Self { .broker(.spawned) }
    package static var spawnFailed: Self { .broker(.spawnFailed) }
    package static var peerLost: Self { .broker(.peerLost) }
    package static var kill: Self { .broker(.kill) }
    package static var agentHello: Self { .broker(.agentHello) }
    package static var workerExited: Self { .broker(.workerExited) }
    package static var unknownPeer: Self { .broker(.unknownPeer) }
    package static var brokerStatus: Self { .broker(.brokerStatus) }
    package static var loadReport: Self { .broker(.loadReport) }
}

/// One protocol message, without its routing envelope: channel id, type and payload.
package struct WireMessage: Sendable {
    /// The channel this message belongs to; 0 for gateway-level messages.
    package var channelID: Int32
    /// What the message means.
    package var type: MessageType
    /// The payload, in the serializer's internal form (or empty).
    package var payload: [UInt8]

    package init(channelID: Int32, type: MessageType, payload: [UInt8]) {
        self.channelID = channelID
        self.type = type
        self.payload = payload
    }

    /// Encodes a channel id as its 4-byte big-endian frame.
    package static func channelFrame(_ id: Int32) -> [UInt8] {
        withUnsafeBytes(of: WireCodec.channelFrameValue(id)) { Array($0) }
    }

    /// The three frames of this message: channel id, type, payload (``WireCodec``).
    package var frames: [[UInt8]] {
        [Self.channelFrame(channelID), [type.rawValue], payload]
    }

    /// Parses the frames that follow the routing envelope (``WireCodec``).
    ///
    /// - Parameter frames: Exactly three frames: a 4-byte channel id, a 1-byte known type, a payload.
    /// - Returns: The message.
    /// - Throws: ``WireFormatError``, naming what was wrong.
    package static func parse<C: Collection<[UInt8]>>(_ frames: C) throws(WireFormatError) -> WireMessage {
        var decoder = WireCodec.Decoder()
        var payload: [UInt8] = []
        for frame in frames {
            if frame.withUnsafeBytes({ decoder.take($0) }) { payload = frame }
        }
        let (channelID, type) = try decoder.finish()
        return WireMessage(channelID: channelID, type: type, payload: payload)
    }
}

/// Why frames are not a protocol message. Every malformed shape has its case; none is fatal.
package enum WireFormatError: Error, Equatable, CustomStringConvertible {
    /// Not exactly three frames (channel id, type, payload) after the envelope; the count seen.
    case frameCount(Int)
    /// A channel id frame that is not 4 bytes; its size.
    case channelFrameSize(Int)
    /// A type frame that is not 1 byte; its size.
    case typeFrameSize(Int)
    /// A type byte neither protocol defines.
    case unknownType(UInt8)
    /// A channel message (EXEC, DATA, CLOSE, CLOSE_ERROR, CREDIT, STATUS) on channel 0 or a
    /// negative id: no channel has such an id.
    case badChannelID(Int32, GatewayMessageType)

    package var description: String {
        switch self {
        case .frameCount(let count): "expected 3 frames (channel, type, payload), got \(count)"
        case .channelFrameSize(let size): "channel id frame has \(size) bytes, expected 4"
        case .typeFrameSize(let size): "message type frame has \(size) bytes, expected 1"
        case .unknownType(let byte): "unknown message type \(byte)"
        case .badChannelID(let id, let type): "\(type) on channel id \(id): no channel has it"
        }
    }

    /// The error as a protocol violation, for callers that report ``ExecnetError``s.
    package var protocolViolation: ExecnetError { ExecnetError(.protocolViolation, description) }
}

/// The frame codec, the one place that knows the frames of a message: used by the hub, the
/// worker, the agent and the broker (whose forwarding path reads the header frames through it
/// and hands the payload frame on undecoded).
package enum WireCodec {
    /// The frames of a message after its routing envelope: channel id, type, payload.
    package static let frameCount = 3

    /// The channel id frame's 4 bytes as one value to write (big-endian).
    package static func channelFrameValue(_ id: Int32) -> UInt32 {
        UInt32(bitPattern: id).bigEndian
    }

    /// Decodes a channel id frame.
    package static func decodeChannelID(_ frame: UnsafeRawBufferPointer) throws(WireFormatError) -> Int32 {
        guard frame.count == 4 else { throw .channelFrameSize(frame.count) }
        return Int32(bitPattern: UInt32(frame[0]) << 24 | UInt32(frame[1]) << 16 | UInt32(frame[2]) << 8 | UInt32(frame[3]))
    }

    /// Decodes a type frame.
    package static func decodeType(_ frame: UnsafeRawBufferPointer) throws(WireFormatError) -> MessageType {
        guard frame.count == 1 else { throw .typeFrameSize(frame.count) }
        guard let type = MessageType(rawValue: frame[0]) else { throw .unknownType(frame[0]) }
        return type
    }

    /// Checks a decoded header: a channel message needs a channel's id.
    package static func validate(channelID: Int32, type: MessageType) throws(WireFormatError) {
        if case .gateway(let kind) = type, kind.isChannelMessage, channelID <= 0 { throw .badChannelID(channelID, kind) }
    }

    /// Decodes the two header frames of a message whose frame count is known to be right.
    package static func decodeHeader(
        channel: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer
    ) throws(WireFormatError) -> (channelID: Int32, type: MessageType) {
        let channelID = try decodeChannelID(channel)
        let kind = try decodeType(type)
        try validate(channelID: channelID, type: kind)
        return (channelID, kind)
    }

    /// Decodes a message's frames one at a time, as they are received (in place, without a
    /// copy), and says at the end what they were. Problems are reported in a fixed order: the
    /// frame count, then the channel frame, then the type frame, then the channel id.
    package struct Decoder {
        private var count = 0
        private var channelID: Int32 = 0
        private var type: MessageType?
        private var problem: WireFormatError?

        package init() {}

        /// Takes the next frame after the envelope.
        ///
        /// - Returns: Whether this frame is the payload (the caller keeps its bytes).
        package mutating func take(_ frame: UnsafeRawBufferPointer) -> Bool {
            defer { count += 1 }
            switch count {
            case 0:
                do { channelID = try WireCodec.decodeChannelID(frame) } catch { problem = error }
            case 1:
                do { type = try WireCodec.decodeType(frame) } catch { if problem == nil { problem = error } }
            case 2:
                return true
            default:
                break
            }
            return false
        }

        /// The header, or the first problem of the frames taken.
        package func finish() throws(WireFormatError) -> (channelID: Int32, type: MessageType) {
            guard count == WireCodec.frameCount else { throw .frameCount(count) }
            if let problem { throw problem }
            // A type is decoded whenever there was no problem.
            guard let type else { throw .frameCount(count) }
            try WireCodec.validate(channelID: channelID, type: type)
            return (channelID, type)
        }
    }
}

/// A short hex dump of at most `limit` bytes, for logs of malformed frames.
package func hexDump(_ bytes: some Collection<UInt8>, limit: Int = 32) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    var text = ""
    for byte in bytes.prefix(limit) {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xf)])
    }
    if bytes.count > limit { text += "…(\(bytes.count) bytes)" }
    return text.isEmpty ? "<empty>" : text
}
