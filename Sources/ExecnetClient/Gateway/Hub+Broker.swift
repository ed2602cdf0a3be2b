// The client hub's links to brokers: a DEALER per broker (and key set), the client's registration
// (CLIENT_HELLO, WELCOME), SPAWN requests, routing of `[address][channel][type][payload]` frames
// to broker gateways, heartbeats both ways (each link's BrokerSession), and what a lost or
// restarted broker means for them. Everything here runs on the client's I/O thread.

import ExecnetCore
import Logging
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Identifies a broker link: the endpoint and the key files used to reach it (a broker gateway's
/// spec kind, as parsed).
typealias BrokerLinkKey = BrokerBinding

/// One client's connection to one broker.
///
/// - Important: Used on the client's I/O thread only.
final class BrokerLink {
    let key: BrokerLinkKey
    let socket: ZMQSocket
    let logger: Logger
    /// Registration, heartbeats and the broker's liveness.
    var session: BrokerSession
    /// Everything to the broker goes through it, in order.
    let outbox: Outbox
    /// When this client last sent the broker anything.
    var lastSent: ContinuousClock.Instant {
        get { session.lastSent }
        set { session.sent(now: newValue) }
    }
    /// Gateways on this broker, by worker address.
    var gateways: [PeerKey: Gateway] = [:] {
        didSet {
            // Only a gateway still on the link may be found through the one-entry cache.
            if let recent = recentGateway, gateways[PeerKey(recent.routingID)] !== recent { recentGateway = nil }
        }
    }
    /// The gateway whose message came last (see `Hub.handleLink`).
    var recentGateway: Gateway?
    /// SPAWN requests waiting for WELCOME, with the address of the gateway each is for.
    var pendingSpawns: [(address: [UInt8], request: [UInt8])] = []

    init(key: BrokerLinkKey, socket: ZMQSocket, logger: Logger, loop: IOLoop?) {
        self.key = key
        self.socket = socket
        self.logger = logger
        session = BrokerSession(settings: .default, registers: true, now: .now)
        self.outbox = Outbox(socket: socket, routed: false, logger: logger, loop: loop)
    }

    /// Sends `[address][channel][type][payload]` to the broker, through the outbox (a full pipe
    /// queues; a failure or the cap is logged there).
    func send(_ message: WireMessage, to address: [UInt8]) {
        lastSent = .now
        outbox.send(message, envelope: address)
    }

    func sayHello() {
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["pid"] = .int(Int64(getpid()))
        hello["hostname"] = .string(hostName())
        send(WireMessage(channelID: 0, type: .clientHello, payload: hello.encoded), to: [])
        session.helloSent(now: .now)
    }

    func close() {
        outbox.close()
        socket.close()
    }
}

extension Hub {
    /// Opens (or reuses) the link and sends the SPAWN request, now or once registered.
    func handleRemoteLaunch(_ launch: RemoteLaunch, _ loop: IOLoop) {
        let link: BrokerLink
        do {
            link = try self.link(for: launch.link, keys: launch.keys, loop)
        } catch {
            launch.gateway.post(.startFailed(error))
            return
        }
        link.gateways[PeerKey(launch.gateway.routingID)] = launch.gateway
        if link.session.isReady {
            link.send(WireMessage(channelID: 0, type: .spawn, payload: launch.request), to: [])
        } else {
            link.pendingSpawns.append((launch.gateway.routingID, launch.request))
        }
    }

    private func link(for key: BrokerLinkKey, keys: CurveClientKeys?, _ loop: IOLoop) throws -> BrokerLink {
        if let existing = links[key] { return existing }
        let socket = try makeBrokerDealer(context: context, kind: "c", keys: keys)
        do {
            try socket.connect(key.endpoint)
        } catch {
            throw ExecnetError(.transport, "cannot connect to broker \(key.endpoint): \(error)", cause: error)
        }
        let link = BrokerLink(key: key, socket: socket, logger: logger, loop: loop)
        links[key] = link
        loop.addSocket(socket) { [unowned self, unowned link] in self.handleLink(link) }
        scheduleLinkTick(link, loop)
        link.sayHello()
        return link
    }

    // MARK: - Incoming

    /// Drains a broker link: control messages (empty address) and broker gateways' messages.
    private func handleLink(_ link: BrokerLink) {
        // Before anything read now is judged (an UNKNOWN_PEER among it), notice a pause of our own.
        if let gap = link.session.noticePause(now: .now) { resumed(link, after: gap) }
        var received = 0
        defer {
            // Any traffic from the broker is a sign of life (one clock read per batch).
            if received > 0 { link.session.heard(now: .now) }
        }
        var bytes = 0
        for _ in 0..<Hub.drainMessages where bytes < Hub.drainBytes {
            let next: ReceivedWireMessage
            do {
                guard let message = try link.socket.receiveWire(routed: true) else { return }
                next = message
            } catch {
                logger.error("receive from broker \(link.key.endpoint) failed: \(error)")
                return
            }
            received += 1
            guard let message = next.message else {
                rogue.warning("dropped a malformed message from a broker", link.key.endpoint)
                continue
            }
            bytes += message.payload.count
            let address = next.routingID
            if address.isEmpty {
                handleBrokerControl(link, message)
            } else if let recent = link.recentGateway, recent.routingID == address {
                // A stream from one gateway skips the hash of its address.
                dispatch(message, from: recent, link: link)
            } else if let gateway = link.gateways[PeerKey(address)] {
                link.recentGateway = gateway
                dispatch(message, from: gateway, link: link)
            }
        }
    }

    private func handleBrokerControl(_ link: BrokerLink, _ message: WireMessage) {
        switch message.type {
        case .heartbeat:
            break
        case .welcome:
            // Only an answer to an open hello counts; a second one (to a repeated hello) changes nothing.
            let offered = LivenessSettings(welcome: ControlPayload(decoding: message.payload))
            guard link.session.welcomed(settings: offered, now: .now) else { break }
            for pending in link.pendingSpawns {
                link.send(WireMessage(channelID: 0, type: .spawn, payload: pending.request), to: [])
            }
            link.pendingSpawns = []
        case .unknownPeer:
            // The broker restarted (or forgot us): every gateway it carried is gone; register again.
            // While registering, more of these are answers to what was sent before the new hello
            // (the broker answers in order, so they come before its WELCOME): ignore them.
            guard link.session.unknownPeer() else { break }
            if let paused = link.session.pausedFor {
                loseGateways(link, cause: "this client was not running for \(paused) (stopped?), longer than broker "
                    + "\(link.key.endpoint)'s liveness window of \(link.session.settings.expiry), so the broker forgot this client")
            } else {
                loseGateways(link, cause: "broker \(link.key.endpoint) restarted or forgot this client")
            }
            link.sayHello()
        case .spawnFailed:
            let reason = decodeString(message.payload) ?? "refused"
            for gateway in link.gateways.values {
                gateway.post(.startFailed(ExecnetError(.spawnFailed, "broker \(link.key.endpoint): \(reason)", gatewayID: gateway.id)))
            }
        default:
            rogue.warning("dropped a control message not for a client", "\(message.type) from broker \(link.key.endpoint)")
        }
    }

    /// A broker's report about one of its gateways (SPAWNED, SPAWN_FAILED, PEER_LOST), from the
    /// hub's one dispatch. Returns whether `message` was one.
    func handleBrokerReport(_ message: WireMessage, _ gateway: Gateway, _ link: BrokerLink) -> Bool {
        switch message.type {
        case .spawned:
            if let report = ControlPayload(decoding: message.payload), let pid = report.int("pid") {
                gateway.post(.spawned(pid: Int32(truncatingIfNeeded: pid), host: report.string("host")))
            }
        case .spawnFailed:
            link.gateways[PeerKey(gateway.routingID)] = nil
            gateway.post(.startFailed(ExecnetError(.spawnFailed, decodeString(message.payload) ?? "the broker could not start a worker",
                                                   gatewayID: gateway.id)))
            gateway.post(.exited(.exited(-1), cause: "the worker never started"))
        case .peerLost:
            link.gateways[PeerKey(gateway.routingID)] = nil
            let report = ControlPayload(decoding: message.payload)
            let exit = report?.workerExit ?? .heartbeatLost
            counters.recordDeath(exit, unresponsive: false)
            // The agent's report carries the worker's last stderr lines (bounded here too: the peer is not trusted).
            var stderr: [String] = []
            if case .list(let lines)? = report?["stderr"] {
                stderr = lines.suffix(Hub.stderrTailLines).compactMap { if case .string(let line) = $0 { String(line.prefix(500)) } else { nil } }
            }
            gateway.post(.exited(exit, cause: report?.string("cause") ?? "broker \(link.key.endpoint) lost gateway \(gateway.id)",
                                 stderr: stderr))
        default:
            return false
        }
        return true
    }

    // MARK: - Liveness

    private func scheduleLinkTick(_ link: BrokerLink, _ loop: IOLoop) {
        // The timer holds the link until it fires; a link that was replaced or closed is let go
        // then. (No weak captures: they would slow every retain of the hub and the link.)
        loop.schedule(at: .now.advanced(by: link.session.tickPeriod)) { [unowned self, unowned loop] in
            guard self.links[link.key] === link else { return }
            self.linkTick(link)
            self.scheduleLinkTick(link, loop)
        }
    }

    /// Heartbeats an idle link; a silent broker ends its gateways, and registration is retried.
    private func linkTick(_ link: BrokerLink) {
        switch link.session.tick(now: .now) {
        case .none:
            break
        case .sendHello:
            link.sayHello()
        case .sendHeartbeat:
            link.send(WireMessage(channelID: 0, type: .heartbeat, payload: []), to: [])
        case .resumedAfterPause(let gap):
            resumed(link, after: gap)
        case .brokerLost:
            if link.gateways.isEmpty && link.pendingSpawns.isEmpty {
                // Nothing depends on this broker: close the link; the next gateway opens a new one.
                logger.debug("closing the idle link to silent broker \(link.key.endpoint)")
                links[link.key] = nil
                loop?.removeSocket(link.socket)
                link.close()
                return
            }
            logger.warning("broker \(link.key.endpoint) stopped answering heartbeats",
                           metadata: ["gateways": "\(link.gateways.values.map(\.id).sorted())",
                                      "pending_spawns": "\(link.pendingSpawns.count)"])
            loseGateways(link, cause: "broker \(link.key.endpoint) stopped answering heartbeats")
            link.sayHello()
        }
    }

    /// This client was not running for a whole window since the link's last turn (it was stopped
    /// itself): the broker's silence is ours. It speaks first; a broker that forgot this client
    /// meanwhile answers UNKNOWN_PEER, which then says so.
    private func resumed(_ link: BrokerLink, after gap: Duration) {
        logger.debug("not scheduled for \(gap); liveness of broker \(link.key.endpoint) starts afresh")
        link.send(WireMessage(channelID: 0, type: .heartbeat, payload: []), to: [])
    }

    /// Kills a broker gateway's worker; one whose SPAWN has not left yet (the link is still
    /// registering) is never started, and ends here.
    func killRemote(_ key: BrokerLinkKey, address: [UInt8], signal: Int32) {
        guard let link = links[key] else { return }
        if let index = link.pendingSpawns.firstIndex(where: { $0.address == address }) {
            link.pendingSpawns.remove(at: index)
            if let gateway = link.gateways.removeValue(forKey: PeerKey(address)) {
                gateway.post(.exited(.exited(-1), cause: "the worker of gateway \(gateway.id) was never started"))
            }
            return
        }
        var order = ControlPayload()
        order["signal"] = .int(Int64(signal))
        link.send(WireMessage(channelID: 0, type: .kill, payload: order.encoded), to: address)
    }

    private func loseGateways(_ link: BrokerLink, cause: String) {
        let lost = link.gateways
        link.gateways = [:]
        // Their SPAWN requests must not start workers once the broker answers again.
        link.pendingSpawns = []
        for gateway in lost.values {
            gateway.post(.startFailed(ExecnetError(.workerDied, cause, gatewayID: gateway.id)))
            gateway.post(.exited(.heartbeatLost, cause: cause))
        }
    }
}
