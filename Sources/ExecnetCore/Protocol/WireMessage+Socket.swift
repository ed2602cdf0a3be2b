// Protocol messages straight to and from a socket: the channel id and type frames are written from
// and parsed in place, so a message costs one array (its payload) instead of an array per frame
// plus the array of frames. Large payloads go to libzmq without a copy. I/O thread only.

import ZeroMQ

/// Payloads from this size on are handed to libzmq without a copy.
@usableFromInline let zeroCopyPayloadSize = 32 << 10

/// One message received from a socket: its routing id (ROUTER only) and the parsed message, or
/// why the frames after the routing id were not a protocol message.
@usableFromInline package struct ReceivedWireMessage {
    @inlinable package init(routingID: [UInt8], message: WireMessage?, problem: ExecnetError?) {
        self.routingID = routingID
        self.message = message
        self.problem = problem
    }

    @usableFromInline package var routingID: [UInt8]
    /// The message, or `nil` if its frames were malformed (see `problem`). Two optionals rather
    /// than a `Result`: a multi-payload enum of two large structs is handled through the runtime
    /// on every message.
    @usableFromInline package var message: WireMessage?
    @usableFromInline package var problem: ExecnetError?

    /// The message, or the problem with its frames.
    @inlinable package func get() throws(ExecnetError) -> WireMessage {
        if let message { return message }
        throw problem ?? ExecnetError(.protocolViolation, "malformed message")
    }
}

extension ZMQSocket {
    /// Sends `message` as its three frames, after `routingID` on a ROUTER.
    ///
    /// - Returns: `false` if the first frame would have blocked (`dontWait`); nothing was sent.
    /// - Throws: ``ZMQError`` as ``ZMQSocket/send(_:dontWait:)`` does.
    @inlinable package func sendWire(_ message: WireMessage, routingID: [UInt8]?, dontWait: Bool) throws -> Bool {
        var first = true
        if let routingID {
            let sent = try routingID.withUnsafeBytes { try sendFrame($0, more: true, dontWait: dontWait) }
            if !sent { return false }
            first = false
        }
        let raw = UInt32(bitPattern: message.channelID).bigEndian
        let sent = try withUnsafeBytes(of: raw) { try sendFrame($0, more: true, dontWait: first && dontWait) }
        if !sent {
            precondition(!first, "libzmq refused a later frame of a multipart message it had accepted.")
            return false
        }
        var type = message.type.rawValue
        try withUnsafeBytes(of: &type) { _ = try sendFrame($0, more: true, dontWait: false) }
        if message.payload.count >= zeroCopyPayloadSize {
            try sendFrame(noCopy: message.payload, more: false, dontWait: false)
        } else {
            try message.payload.withUnsafeBytes { _ = try sendFrame($0, more: false, dontWait: false) }
        }
        return true
    }

    /// Receives one whole message: a routing id frame first if `routed`, then channel id, type
    /// and payload.
    ///
    /// - Returns: The message (or the protocol error its frames make), or `nil` if none was waiting.
    /// - Throws: ``ZMQError`` from the socket.
    @inlinable package func receiveWire(routed: Bool) throws -> ReceivedWireMessage? {
        var routingID: [UInt8] = []
        var channelID: Int32 = 0
        var type: MessageType?
        var payload: [UInt8] = []
        var problem: ExecnetError?
        var index = routed ? -1 : 0
        var more = true
        while more {
            let received = try visitReceivedFrame(dontWait: index == (routed ? -1 : 0)) { bytes, hasMore in
                switch index {
                case -1:
                    routingID = Array(bytes)
                case 0:
                    if bytes.count == 4 {
                        channelID = Int32(bitPattern: UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16
                                          | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
                    } else if problem == nil {
                        problem = ExecnetError(.protocolViolation, "channel id frame has \(bytes.count) bytes, expected 4")
                    }
                case 1:
                    type = bytes.count == 1 ? MessageType(rawValue: bytes[0]) : nil
                    if type == nil && problem == nil {
                        problem = ExecnetError(.protocolViolation, "unknown message type frame \(hexDump(bytes))")
                    }
                case 2:
                    payload = Array(bytes)
                default:
                    break
                }
                more = hasMore
            }
            guard received else {
                precondition(index == (routed ? -1 : 0), "libzmq delivered part of a multipart message.")
                return nil
            }
            index += 1
        }
        if index != 3 {
            problem = ExecnetError(.protocolViolation, "expected 3 frames (channel, type, payload), got \(max(index, 0))")
        }
        if let problem { return ReceivedWireMessage(routingID: routingID, message: nil, problem: problem) }
        return ReceivedWireMessage(
            routingID: routingID, message: WireMessage(channelID: channelID, type: type!, payload: payload), problem: nil)
    }
}
