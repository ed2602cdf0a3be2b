// The broker's check of the channels' flow control (docs/PROTOCOL.md, "Flow control"; docs/SECURITY.md,
// "Limits"). The broker sees every DATA and CREDIT between a client and its worker, so it keeps, per
// channel and direction, the credit the sender has left, exactly as an honest sender counts it: a
// sender that sends beyond it, or a receiver that grants more than it was sent, is lying and is cut
// off. What the broker can be made to hold is then bounded by the windows of the open channels; the
// ledger counts those bytes, and past the total cap the broker refuses new gateways.
// Per forwarded message: one dictionary lookup and a few integer updates.

import ExecnetCore
import ExecnetValue
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The broker's memory limits. Defaults are documented in docs/SECURITY.md ("Limits").
public struct BrokerLimits: Sendable {
    /// Bytes forwarded on channels and not yet granted back by their receivers, plus bytes queued
    /// for slow peers, past which new gateways are refused (default 1 GiB).
    public var maxInFlightBytes: Int = 1 << 30
    /// Channels with traffic one gateway may have open at once; a peer opening more is cut off
    /// (default 4,096).
    public var maxChannelsPerGateway: Int = 4096
    /// Bytes the broker may queue for one peer beyond what that peer's own credit grants allow
    /// (control messages: status answers, heartbeats); a peer that leaves more unread is cut off
    /// (default 16 MiB).
    public var maxQueuedControlBytes: Int = 16 << 20
    /// libzmq's per-peer pipe limit, in messages, each way (default 16,384); beyond it the broker
    /// queues in its own outbox, where bytes are counted.
    public var highWaterMark: Int32 = 16384

    /// The defaults.
    public init() {}
}

/// A channel between one worker and its owner, as a ledger key.
struct ChannelFlowKey: Hashable {
    let worker: PeerKey
    let channelID: Int32
}

/// The credit a sender has left in one direction of a channel.
struct FlowCredit {
    var messages = FlowWindow.messages
    var bytes = FlowWindow.bytes

    /// Bytes sent and not yet granted back (what the receiver, or the way to it, may hold).
    var outstanding: Int { max(0, FlowWindow.bytes - bytes) }

    /// The sender's own rule (`ChannelState.hasCredit`).
    func allows(_ size: Int) -> Bool {
        messages > 0 && (bytes >= size || bytes >= FlowWindow.bytes)
    }

    /// Takes credit for one message of `size`, or names the violation.
    mutating func take(_ size: Int, _ channelID: Int32) -> FlowVerdict {
        guard allows(size) else { return .violation("sent DATA beyond its credit on channel \(channelID)") }
        messages -= 1
        bytes -= size
        return .forward
    }

    /// The sender has used its credit up and waits for a grant (a credit stall).
    var isExhausted: Bool { messages <= 0 || bytes <= 0 }

    /// A grant is owed only for what was sent: the credit never exceeds the window.
    var isWithinWindow: Bool { messages <= FlowWindow.messages && bytes <= FlowWindow.bytes }
}

/// One channel's credit both ways.
struct ChannelFlow {
    var toWorker = FlowCredit()
    var toClient = FlowCredit()
    /// The client sent its close: it may send no more DATA.
    var clientClosed = false
}

/// What the ledger says about one message.
enum FlowVerdict: Equatable {
    /// Forward it.
    case forward
    /// A stale grant for a channel both sides are done with: nothing can use it.
    case drop
    /// The sender broke flow control: cut it off with this reason.
    case violation(String)
}

/// The per-channel credit the broker has seen. A pure struct, kept by the broker.
struct FlowLedger {
    let limits: BrokerLimits
    private(set) var channels: [ChannelFlowKey: ChannelFlow] = [:]
    private(set) var channelCounts: [PeerKey: Int] = [:]
    /// Bytes forwarded as DATA and not yet granted back, over every channel.
    private(set) var inFlightBytes = 0
    /// How many times a sender used its credit up (a credit stall began), since start.
    private(set) var stallsStarted = 0
    /// DATA payload bytes forwarded since start (both ways).
    private(set) var dataBytes = 0

    init(limits: BrokerLimits) {
        self.limits = limits
    }

    /// A DATA of `size` bytes; `created` says that it opened the channel at the broker.
    mutating func data(worker: PeerKey, _ channelID: Int32, fromWorker: Bool, size: Int) -> (FlowVerdict, created: Bool) {
        let key = ChannelFlowKey(worker: worker, channelID: channelID)
        // One hash lookup on the common path: the record is updated in place through its index.
        guard let index = channels.index(forKey: key) else { return firstData(key, fromWorker: fromWorker, size: size) }
        let verdict: FlowVerdict
        if fromWorker {
            verdict = channels.values[index].toClient.take(size, channelID)
        } else if channels.values[index].clientClosed {
            verdict = .violation("sent DATA on channel \(channelID) after closing it")
        } else {
            verdict = channels.values[index].toWorker.take(size, channelID)
        }
        if verdict == .forward {
            inFlightBytes += size
            dataBytes &+= size
            let credit = fromWorker ? channels.values[index].toClient : channels.values[index].toWorker
            if credit.isExhausted { stallsStarted += 1 }
        }
        return (verdict, false)
    }

    private mutating func firstData(_ key: ChannelFlowKey, fromWorker: Bool, size: Int) -> (FlowVerdict, created: Bool) {
        let count = channelCounts[key.worker, default: 0]
        guard count < limits.maxChannelsPerGateway else {
            return (.violation("opened more than \(limits.maxChannelsPerGateway) channels on one gateway"), false)
        }
        channelCounts[key.worker] = count + 1
        channels[key] = ChannelFlow()
        return (data(worker: key.worker, key.channelID, fromWorker: fromWorker, size: size).0, true)
    }

    /// A CREDIT granting `messages` and `bytes` to the other side.
    mutating func credit(worker: PeerKey, _ channelID: Int32, fromWorker: Bool, messages: Int, bytes: Int) -> FlowVerdict {
        let key = ChannelFlowKey(worker: worker, channelID: channelID)
        guard channels[key] != nil else {
            // Nothing was sent on it (a grant owed for nothing), or the worker closed it (nothing
            // more can be sent to use it).
            return .drop
        }
        let before: Int
        let within: Bool
        if fromWorker {
            before = channels[key]!.toWorker.outstanding
            channels[key]!.toWorker.messages += messages
            channels[key]!.toWorker.bytes += bytes
            within = channels[key]!.toWorker.isWithinWindow
        } else {
            before = channels[key]!.toClient.outstanding
            channels[key]!.toClient.messages += messages
            channels[key]!.toClient.bytes += bytes
            within = channels[key]!.toClient.isWithinWindow
        }
        guard within else {
            return .violation("granted credit on channel \(channelID) for more than it was sent (\(messages) messages, \(bytes) bytes)")
        }
        let after = fromWorker ? channels[key]!.toWorker.outstanding : channels[key]!.toClient.outstanding
        inFlightBytes -= before - after
        return .forward
    }

    /// A CLOSE or CLOSE_ERROR. The worker's close ends the channel at the broker (the client sends
    /// nothing after the worker's close but grants, which are then moot); the client's only stops
    /// the client's DATA. Returns whether the channel was forgotten.
    @discardableResult
    mutating func close(worker: PeerKey, _ channelID: Int32, fromWorker: Bool) -> Bool {
        let key = ChannelFlowKey(worker: worker, channelID: channelID)
        guard channels[key] != nil else { return false }
        if !fromWorker {
            channels[key]!.clientClosed = true
            return false
        }
        forget(key)
        return true
    }

    /// Workers that have channels in the ledger.
    var workersWithChannels: [PeerKey] { Array(channelCounts.keys) }

    /// Forgets every channel of a worker that is gone.
    mutating func removeWorker(_ worker: PeerKey) {
        guard channelCounts[worker] != nil else { return }
        for key in channels.keys where key.worker == worker { forget(key) }
        channelCounts[worker] = nil
    }

    /// Bytes sent toward `peer` on its channels and not yet granted back: what its credit allowed.
    func outstanding(toward peer: PeerKey, workersOf owner: Set<PeerAddress>?) -> Int {
        var total = 0
        for (key, flow) in channels {
            if key.worker == peer {
                total += flow.toWorker.outstanding
            } else if let owner, owner.contains(key.worker.bytes) {
                total += flow.toClient.outstanding
            }
        }
        return total
    }

    private mutating func forget(_ key: ChannelFlowKey) {
        guard let flow = channels.removeValue(forKey: key) else { return }
        inFlightBytes -= flow.toWorker.outstanding + flow.toClient.outstanding
        let count = channelCounts[key.worker, default: 1] - 1
        channelCounts[key.worker] = count > 0 ? count : nil
    }
}

extension Broker {
    /// Checks one forwarded channel message against the ledger. Returns `false` if it must not be
    /// forwarded (a stale grant, or a violation whose sender was cut off).
    func admitChannelTraffic(
        worker: PeerAddress, key: PeerKey, fromWorker: Bool, sender: PeerAddress,
        channelID: Int32, type: GatewayMessageType, payloadSize: Int, payload: () -> [UInt8]
    ) -> Bool {
        let verdict: FlowVerdict
        switch type {
        case .data:
            let (outcome, created) = flow.data(worker: key, channelID, fromWorker: fromWorker, size: payloadSize)
            if created { table.noteChannelMessage(worker: worker, channelID: channelID, type: .data) }
            verdict = outcome
        case .credit:
            guard let (messages, bytes) = Self.parseCredit(payload()) else {
                verdict = .violation("sent a malformed CREDIT on channel \(channelID)")
                break
            }
            verdict = flow.credit(worker: key, channelID, fromWorker: fromWorker, messages: messages, bytes: bytes)
        case .close, .closeError:
            flow.close(worker: key, channelID, fromWorker: fromWorker)
            table.noteChannelMessage(worker: worker, channelID: channelID, type: .gateway(type))
            verdict = .forward
        default:
            verdict = .forward
        }
        switch verdict {
        case .forward:
            return true
        case .drop:
            logger.debug("dropped a stale CREDIT on channel \(channelID)")
            return false
        case .violation(let reason):
            cutOff(sender, reason: reason)
            return false
        }
    }

    /// `(messages, bytes)`, both non-negative and at most a window's worth of 64-bit headroom.
    static func parseCredit(_ payload: [UInt8]) -> (Int, Int)? {
        guard case .tuple(let parts)? = try? Serializer.decodeInternal(payload, resolveChannel: nil), parts.count == 2,
            case .int(let messages) = parts[0], case .int(let bytes) = parts[1],
            messages >= 0, bytes >= 0, messages <= Int64(Int32.max), bytes <= Int64(Int32.max) << 8
        else { return nil }
        return (Int(messages), Int(bytes))
    }

    /// Cuts off a peer that broke flow control or let too much pile up: its gateways end with the
    /// reason as their cause (the client is told; the workers are killed).
    func cutOff(_ address: PeerAddress, reason: String) {
        switch table.kind(of: address) {
        case .worker:
            guard let worker = table.removeWorker(address) else { return }
            let cause = "the broker cut off the worker of gateway \(worker.gatewayID) on host \(worker.host): it \(reason)"
            logger.warning("\(cause)")
            flow.removeWorker(PeerKey(address))
            outbox?.forget(address)
            var lost = ControlPayload()
            lost["cause"] = .string(cause)
            recordDeath(worker, client: clientLabel(key: worker.ownerKey, owner: worker.owner), cause: cause, exit: nil)
            sendToClient(worker.owner, about: address, .peerLost, lost.encoded)
            killWorker(worker)
        case .client:
            guard let (client, workers) = table.removeClient(address) else { return }
            logger.warning("the broker cut off client \(client.hostname):\(client.pid): it \(reason); killing its \(workers.count) workers",
                           metadata: ["client": "\(keyFingerprint(client.key))"])
            // What was queued for it goes: its queue may be what was too long. It is told why.
            outbox?.forget(address)
            let label = client.key.isEmpty ? Self.clientLabel(hostname: client.hostname, pid: client.pid)
                : clientLabel(key: client.key, owner: address)
            for worker in workers {
                table.removeWorker(worker.address)
                flow.removeWorker(PeerKey(worker.address))
                recordDeath(worker, client: label, cause: "the broker cut off its client \(label): it \(reason)", exit: nil)
                var lost = ControlPayload()
                lost["cause"] = .string("the broker cut off this client: it \(reason)")
                sendToClient(address, about: worker.address, .peerLost, lost.encoded)
                killWorker(worker)
            }
        case .agent, nil:
            logger.warning("the broker cut off peer \(hexDump(address)): it \(reason)")
            outbox?.forget(address)
        }
        checkDrained()
    }

    private func killWorker(_ worker: WorkerRecord) {
        var order = ControlPayload()
        order["address"] = .bytes(worker.address)
        order["signal"] = .int(Int64(SIGKILL))
        sendToPeer(worker.agent, .kill, order.encoded)
    }

    /// Whether the broker may take on another gateway: what it may be made to hold is under its cap.
    var isUnderMemoryCap: Bool {
        flow.inFlightBytes + (outbox?.queuedBytes ?? 0) <= configuration.limits.maxInFlightBytes
    }

    /// After a flush: a peer that leaves more queued than its credit allowed plus the control
    /// allowance is cut off. Summed only for peers past the allowance (rare).
    func checkQueues() {
        guard let outbox else { return }
        let allowance = configuration.limits.maxQueuedControlBytes
        for (address, bytes) in outbox.peersQueuing(over: allowance) {
            let key = PeerKey(address)
            let owned = table.kind(of: address) == .client ? table.clients[key]?.workers : nil
            let allowed = flow.outstanding(toward: key, workersOf: owned) + allowance
            if bytes > allowed {
                cutOff(address, reason: "left \(bytes) bytes unread, more than its credit allowed (\(allowed))")
            }
        }
    }
}

extension Broker {
    /// Why a SPAWN is refused at the cap.
    var memoryCapReason: String {
        "the broker is at its memory cap (\(flow.inFlightBytes + (outbox?.queuedBytes ?? 0)) bytes in flight, cap "
            + "\(configuration.limits.maxInFlightBytes)): try again when running gateways have drained"
    }

    /// Forgets the ledger's channels of workers the table no longer has (they exited, expired or
    /// were cut off). Runs on the liveness tick, so no removal path needs to know about the ledger.
    func forgetChannelsOfGoneWorkers() {
        for worker in flow.workersWithChannels where table.workerOwner(worker) == nil {
            flow.removeWorker(worker)
        }
    }
}
