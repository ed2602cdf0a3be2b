// The frame protocol between a client (or broker) ROUTER and a worker DEALER: our mdp.h.
// Pure values and parsing; no I/O. docs/PROTOCOL.md describes the same frames in prose.

/// The version of the frame protocol. A worker says it in its hello; a client refuses any other.
package let wireProtocolVersion: Int64 = 2

/// The kind of a message: the one-byte type frame.
@usableFromInline package enum MessageType: UInt8, Sendable, CustomStringConvertible {
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

    // Broker messages (docs/PROTOCOL.md, "Broker"): between the broker and its clients, agents and workers.

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

    @usableFromInline package var description: String {
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
        }
    }
}

/// One protocol message, without its routing envelope: channel id, type and payload.
@usableFromInline package struct WireMessage: Sendable {
    /// The channel this message belongs to; 0 for gateway-level messages.
    @usableFromInline package var channelID: Int32
    /// What the message means.
    @usableFromInline package var type: MessageType
    /// The payload, in the serializer's internal form (or empty).
    @usableFromInline package var payload: [UInt8]

    @inlinable package init(channelID: Int32, type: MessageType, payload: [UInt8]) {
        self.channelID = channelID
        self.type = type
        self.payload = payload
    }

    /// Encodes a channel id as its 4-byte big-endian frame.
    package static func channelFrame(_ id: Int32) -> [UInt8] {
        let v = UInt32(bitPattern: id)
        return [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16),
                UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    /// The three frames of this message: channel id, type, payload.
    package var frames: [[UInt8]] {
        [Self.channelFrame(channelID), [type.rawValue], payload]
    }

    /// Parses the frames that follow the routing envelope.
    ///
    /// - Parameter frames: Exactly three frames: a 4-byte channel id, a 1-byte known type, a payload.
    /// - Returns: The message.
    /// - Throws: ``ExecnetError`` with code `protocolViolation`, naming what was wrong.
    package static func parse<C: Collection<[UInt8]>>(_ frames: C) throws -> WireMessage where C.Index == Int {
        guard frames.count == 3 else {
            throw ExecnetError(.protocolViolation, "expected 3 frames (channel, type, payload), got \(frames.count)")
        }
        let idFrame = frames[frames.startIndex]
        let typeFrame = frames[frames.startIndex + 1]
        guard idFrame.count == 4 else {
            throw ExecnetError(.protocolViolation, "channel id frame has \(idFrame.count) bytes, expected 4")
        }
        guard typeFrame.count == 1, let type = MessageType(rawValue: typeFrame[0]) else {
            throw ExecnetError(.protocolViolation, "unknown message type frame \(hexDump(typeFrame))")
        }
        var raw: UInt32 = 0
        for byte in idFrame { raw = raw << 8 | UInt32(byte) }
        return WireMessage(channelID: Int32(bitPattern: raw), type: type, payload: frames[frames.startIndex + 2])
    }
}

/// A short hex dump of at most `limit` bytes, for logs of malformed frames.
@usableFromInline package func hexDump(_ bytes: some Collection<UInt8>, limit: Int = 32) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    var text = ""
    for byte in bytes.prefix(limit) {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xf)])
    }
    if bytes.count > limit { text += "…(\(bytes.count) bytes)" }
    return text.isEmpty ? "<empty>" : text
}
