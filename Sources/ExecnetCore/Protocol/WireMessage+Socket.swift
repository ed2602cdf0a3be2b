// Protocol messages straight to and from a socket: the channel id and type frames are written from
// and parsed in place, so a message costs one array (its payload) instead of an array per frame
// plus the array of frames. Large payloads go to libzmq without a copy. I/O thread only.

import ZeroMQ

/// Payloads from this size on are handed to libzmq without a copy.
let zeroCopyPayloadSize = 32 << 10

/// One message received from a socket: its routing id (ROUTER only) and the parsed message, or
/// why the frames after the routing id were not a protocol message.
package struct ReceivedWireMessage {
    package var routingID: [UInt8]
    /// The message, or `nil` if its frames were malformed (see `problem`). Two optionals rather
    /// than a `Result`: a multi-payload enum of two large structs is handled through the runtime
    /// on every message.
    package var message: WireMessage?
    package var problem: WireFormatError?

    /// The message, or the problem with its frames.
    package func get() throws(WireFormatError) -> WireMessage {
        if let message { return message }
        throw problem ?? .frameCount(0)
    }
}

extension ZMQSocket {
    /// Sends `message` as its three frames, after `routingID` on a ROUTER and after `envelope`
    /// (a broker's address frame) if given.
    ///
    /// - Returns: `false` if the first frame would have blocked (`dontWait`); nothing was sent.
    /// - Throws: ``ZMQError`` as ``ZMQSocket/send(_:dontWait:)`` does.
    package func sendWire(_ message: WireMessage, routingID: [UInt8]?, envelope: [UInt8]? = nil, dontWait: Bool) throws -> Bool {
        // Only the first frame may meet a full pipe: libzmq takes the rest of a message whose
        // first frame it took.
        var first = true
        func lead(_ bytes: UnsafeRawBufferPointer) throws -> Bool {
            let sent = try sendFrame(bytes, more: true, dontWait: first && dontWait)
            precondition(sent || first, "libzmq refused a later frame of a multipart message it had accepted.")
            first = false
            return sent
        }
        if let routingID, try !routingID.withUnsafeBytes(lead) { return false }
        if let envelope, try !envelope.withUnsafeBytes(lead) { return false }
        if try !withUnsafeBytes(of: WireCodec.channelFrameValue(message.channelID), lead) { return false }
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
    /// and payload, decoded in place by ``WireCodec/Decoder``.
    ///
    /// - Returns: The message (or the protocol error its frames make), or `nil` if none was waiting.
    /// - Throws: ``ZMQError`` from the socket.
    package func receiveWire(routed: Bool) throws -> ReceivedWireMessage? {
        var routingID: [UInt8] = []
        var decoder = WireCodec.Decoder()
        var payload: [UInt8] = []
        var expectRoutingID = routed
        var first = true
        var more = true
        while more {
            let received = try visitReceivedFrame(dontWait: first) { bytes, hasMore in
                if expectRoutingID {
                    routingID = Array(bytes)
                    expectRoutingID = false
                } else if decoder.take(bytes) {
                    payload = Array(bytes)
                }
                more = hasMore
            }
            guard received else {
                precondition(first, "libzmq delivered part of a multipart message.")
                return nil
            }
            first = false
        }
        do {
            let (channelID, type) = try decoder.finish()
            return ReceivedWireMessage(
                routingID: routingID, message: WireMessage(channelID: channelID, type: type, payload: payload), problem: nil)
        } catch {
            return ReceivedWireMessage(routingID: routingID, message: nil, problem: error)
        }
    }
}
