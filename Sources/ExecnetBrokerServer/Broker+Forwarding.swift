// The broker's hot path: channel traffic between a client and its workers (DATA, CREDIT, CLOSE,
// CLOSE_ERROR) is forwarded frame by frame. The routing ids are looked up once, the channel and
// type frames are read in place, and every frame after the routing ids is handed back to libzmq
// as received (`zmq_msg_send` of the received `zmq_msg_t`, no copy). Registration, control
// messages, malformed frames and strangers take the general path in Broker+Peers.swift with the
// same frames as arrays, so what is accepted, answered and logged does not change.

import ExecnetCore
import Logging
import ZeroMQ

extension Broker {
    /// Receives the frames after `address` and routes the message.
    func route(from address: PeerAddress, _ router: ZMQSocket, now: ContinuousClock.Instant) throws {
        // The first frame after the routing id carries the sender's key (Broker+Identity.swift).
        let first = try Self.nextFrame(router)
        guard admit(address, first) else {
            if first.hasMore { _ = try Self.receiveRest(router) }
            return
        }
        let key = PeerKey(address)
        if let owner = table.workerOwner(key) {
            try routeFromWorker(address, key: key, owner: owner, first, router, now: now)
        } else if table.isClient(key) {
            try routeFromClient(address, first, router, now: now)
        } else {
            let body = (first.hasMore ? [first.bytes] + (try Self.receiveRest(router)) : [first.bytes])[...]
            if table.kind(of: address) == .agent {
                handleAgent(address, body)
            } else {
                handleStranger(address, body)
            }
        }
    }

    // MARK: - Workers: [channel][type][payload] to [owner][worker][channel][type][payload]

    private func routeFromWorker(
        _ address: PeerAddress, key: PeerKey, owner: PeerAddress, _ first: consuming ZMQMessage, _ router: ZMQSocket,
        now: ContinuousClock.Instant
    ) throws {
        var channel = first
        guard channel.hasMore else { return handleWorker(address, [channel.bytes][...]) }
        var type = try Self.nextFrame(router)
        guard type.hasMore else { return handleWorker(address, [channel.bytes, type.bytes][...]) }
        var payload = try Self.nextFrame(router)
        if payload.hasMore {
            return handleWorker(address, ([channel.bytes, type.bytes, payload.bytes] + (try Self.receiveRest(router)))[...])
        }
        guard let (channelID, kind) = Self.forwardedHeader(channel, type) else {
            return handleWorker(address, [channel.bytes, type.bytes, payload.bytes][...])
        }
        guard admitChannelTraffic(worker: address, key: key, fromWorker: true, sender: address, channelID: channelID,
                                  type: kind, payloadSize: payload.count, payload: { payload.bytes })
        else { return }
        if !forward(to: owner, prefix: address, channelID, kind, &channel, &type, &payload, now: now) {
            logger.debug("the owner of \(table.worker(address)?.gatewayID ?? "?") is not connected; dropped \(kind)")
        }
    }

    // MARK: - Clients: [worker][channel][type][payload] to [worker][channel][type][payload]

    private func routeFromClient(_ client: PeerAddress, _ first: consuming ZMQMessage, _ router: ZMQSocket,
                                 now: ContinuousClock.Instant) throws {
        let target = first
        let targetAddress = target.bytes
        guard target.hasMore else { return handleClient(client, [targetAddress][...]) }
        var channel = try Self.nextFrame(router)
        guard channel.hasMore else { return handleClient(client, [targetAddress, channel.bytes][...]) }
        var type = try Self.nextFrame(router)
        guard type.hasMore else { return handleClient(client, [targetAddress, channel.bytes, type.bytes][...]) }
        var payload = try Self.nextFrame(router)
        if payload.hasMore {
            let rest = try Self.receiveRest(router)
            return handleClient(client, ([targetAddress, channel.bytes, type.bytes, payload.bytes] + rest)[...])
        }
        let targetKey = PeerKey(targetAddress)
        guard !targetAddress.isEmpty, let (channelID, kind) = Self.forwardedHeader(channel, type),
            table.workerOwner(targetKey) == client
        else {
            return handleClient(client, [targetAddress, channel.bytes, type.bytes, payload.bytes][...])
        }
        guard admitChannelTraffic(worker: targetAddress, key: targetKey, fromWorker: false, sender: client, channelID: channelID,
                                  type: kind, payloadSize: payload.count, payload: { payload.bytes })
        else { return }
        if !forward(to: targetAddress, prefix: nil, channelID, kind, &channel, &type, &payload, now: now) {
            logger.debug("worker \(table.worker(targetAddress)?.gatewayID ?? "?") is not connected; dropped \(kind)")
        }
    }

    // MARK: - Sending

    /// Sends `[destination][prefix?][channel][type][payload]`, the last three as received; behind
    /// a backlog, or meeting a full pipe, through the outbox (which copies them).
    ///
    /// - Returns: `false` if the destination is not connected, or was refused at the outbox's cap.
    private func forward(
        to destination: PeerAddress, prefix: PeerAddress?, _ channelID: Int32, _ kind: GatewayMessageType,
        _ channel: inout ZMQMessage, _ type: inout ZMQMessage, _ payload: inout ZMQMessage, now: ContinuousClock.Instant
    ) -> Bool {
        guard let router, let outbox else { return false }
        messagesOut += 1
        if destination != lastNotedSent {
            table.sent(to: destination, now: now)
            lastNotedSent = destination
        }
        func queued() -> Bool {
            // The outbox keeps the order, and retries.
            let message = WireMessage(channelID: channelID, type: .gateway(kind), payload: payload.bytes)
            return delivered(outbox.send(message, envelope: prefix, to: destination), to: destination)
        }
        if outbox.hasBacklog(for: destination) { return queued() }
        do {
            guard try destination.withUnsafeBytes({ try router.sendFrame($0, more: true, dontWait: true) }) else {
                return queued()
            }
            // libzmq accepts the rest of a message whose first frame it took.
            if let prefix {
                try prefix.withUnsafeBytes { _ = try router.sendFrame($0, more: true, dontWait: false) }
            }
            try router.sendMessage(&channel, more: true, dontWait: false)
            try router.sendMessage(&type, more: true, dontWait: false)
            try router.sendMessage(&payload, more: false, dontWait: false)
            return true
        } catch let error as ZMQError where error.isHostUnreachable {
            return false
        } catch {
            logger.error("ROUTER send failed: \(error)")
            return false
        }
    }

    // MARK: - Receiving

    /// The next frame of a message whose earlier frame said more follow (libzmq has them all).
    private static func nextFrame(_ router: ZMQSocket) throws -> ZMQMessage {
        guard let frame = try router.receiveMessage(dontWait: false) else {
            throw ExecnetError(.transport, "libzmq delivered part of a multipart message")
        }
        return frame
    }

    /// The remaining frames of a message, as arrays.
    private static func receiveRest(_ router: ZMQSocket) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while true {
            let frame = try nextFrame(router)
            frames.append(frame.bytes)
            if !frame.hasMore { return frames }
        }
    }
}

extension GatewayMessageType {
    /// Channel traffic the broker forwards between a client and its worker without looking inside.
    var isForwardedChannelTraffic: Bool {
        switch self {
        case .data, .credit, .close, .closeError: true
        default: false
        }
    }
}

extension Broker {
    /// The header of a message to forward in place, decoded by the frame codec (``WireCodec``)
    /// from the received frames; `nil` if it is malformed or not channel traffic (the general
    /// path then parses the same frames with the same codec, and says why).
    static func forwardedHeader(_ channel: borrowing ZMQMessage, _ type: borrowing ZMQMessage) -> (Int32, GatewayMessageType)? {
        channel.withUnsafeBytes { channelBytes in
            type.withUnsafeBytes { typeBytes in
                guard let header = try? WireCodec.decodeHeader(channel: channelBytes, type: typeBytes),
                    case .gateway(let kind) = header.type, kind.isForwardedChannelTraffic
                else { return nil }
                return (header.channelID, kind)
            }
        }
    }
}
