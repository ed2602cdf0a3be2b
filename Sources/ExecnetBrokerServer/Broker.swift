// The broker role of an I/O thread (the zguide's Majordomo/Paranoid Pirate shape): one ROUTER
// bound to every endpoint, a routing table of clients, agents and workers, heartbeats both ways,
// and a purge of silent peers. Handlers for each kind of peer are in Broker+Peers.swift.
// Everything here runs on the broker's I/O thread.

import ExecnetCore
import Logging
import Synchronization
import ZeroMQ

/// Commands to the broker's I/O thread.
enum BrokerCommand: Sendable {
    /// Stop accepting work, ask every worker to exit, and end the drain wait when none is left
    /// or at `deadline`, whichever comes first.
    case beginShutdown(deadline: ContinuousClock.Instant)
    /// Use a new authorized-keys list (a reload): peers whose key lost its role are dropped.
    case reloadKeys(AuthorizedKeys)
}

/// What the broker shares with the thread that started it.
final class BrokerShared: Sendable {
    /// The endpoints actually bound (ports resolved).
    let endpoints = Mutex<[String]>([])
    /// The status the tick publishes while someone reads it (Broker+Dashboard.swift).
    let published = Mutex<PublishedStatus>(PublishedStatus())
    /// Set once a shutdown has no worker left.
    let drained = Atomic<Bool>(false)
    /// The end of a shutdown's drain wait (no worker left, the grace period over, or the thread
    /// stopped) and the tasks waiting for it.
    private let drainWait = Mutex<DrainWait>(DrainWait())

    private struct DrainWait {
        var over = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    /// Ends the drain wait: every waiter goes on, and later ones do not wait. Idempotent.
    func endDrainWait() {
        let waiters = drainWait.withLock { state in
            state.over = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until ``endDrainWait()`` (or the task's cancellation: stop now). `begin` runs once the
    /// caller waits and returns whether the I/O thread took the shutdown; if not, nobody would end
    /// the wait, so it ends at once.
    func waitForDrain(_ begin: () -> Bool) async {
        let id = drainWait.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // The cancellation flag is set before the handler below takes the lock, so one of
                // the two always sees the other.
                let waits = drainWait.withLock { state -> Bool in
                    guard !state.over, !Task.isCancelled else { return false }
                    state.waiters[id] = continuation
                    return true
                }
                guard waits else { return continuation.resume() }
                if !begin() { resumeWaiter(id) }
            }
        } onCancel: {
            resumeWaiter(id)
        }
    }

    private func resumeWaiter(_ id: Int) {
        drainWait.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}

/// The broker: routes frames between clients and their workers, and keeps every peer's liveness.
final class Broker: IOThreadRole {
    typealias Command = BrokerCommand

    let configuration: BrokerConfiguration
    let context: ZMQContext
    let shared: BrokerShared
    var logger: Logger { configuration.logger }
    /// Where dropped peer input is logged, at most once per kind and interval.
    private(set) lazy var rogue = RateLimitedLogger(logger: logger, timers: nil)
    var router: ZMQSocket?
    var outbox: Outbox?
    /// Peers a message was refused for at the outbox's cap: cut off after this turn.
    var overCapPeers: [PeerAddress] = []
    var zap: ZAPHandler?
    var table: RoutingTable
    /// Per-channel credit as forwarded (Broker+FlowControl.swift).
    var flow: FlowLedger
    var shuttingDown = false
    let started = ContinuousClock.now

    // Message counters, for status.
    var messagesIn = 0
    var messagesOut = 0
    var rateWindowStart = ContinuousClock.now
    var rateWindowIn = 0
    var rateWindowOut = 0
    var rateIn = 0.0
    var rateOut = 0.0
    /// The peer whose last-sent time the forwarding path noted last in this batch.
    var lastNotedSent: PeerAddress = []
    /// Publishes the metrics from the tick (BrokerMetrics.swift).
    let metrics = BrokerMetricsPublisher()
    /// The last worker deaths, oldest first (Broker+Deaths.swift).
    var recentDeaths: [DeathRecord] = []

    // Identity (Broker+Identity.swift).
    /// The keys and their roles (CURVE brokers); replaced on reload.
    var authorizedKeys: AuthorizedKeys?
    /// The last sender whose key was checked, and that key: the per-message check of a run of
    /// messages from one peer is one comparison.
    var verifiedAddress: PeerAddress = []
    /// The key (Z85 bytes) of the message being handled; empty without CURVE.
    var senderKey: [UInt8] = []
    /// Agent names to the key that first registered each.
    var agentNames: [String: [UInt8]] = [:]
    /// Refusals since the last one logged, and when that was (one log line per second at most).
    var refusalsNotLogged = 0
    var lastRefusalLogged: ContinuousClock.Instant?

    init(configuration: BrokerConfiguration, context: ZMQContext, shared: BrokerShared) {
        self.configuration = configuration
        self.context = context
        self.shared = shared
        self.table = RoutingTable(settings: configuration.liveness)
        self.authorizedKeys = configuration.security?.authorizedKeys
        self.flow = FlowLedger(limits: configuration.limits)
    }

    // MARK: - IOThreadRole

    func setUp(_ loop: IOLoop) throws {
        try configuration.validate()
        if let security = configuration.security {
            // The ZAP handler must exist before the first CURVE connection arrives.
            if security.authorizedKeys.linesWithoutRole > 0 {
                logger.warning("\(security.authorizedKeys.linesWithoutRole) authorized keys have no role word: they are clients only")
            }
            let zap = try ZAPHandler(context: context, logger: logger) { [unowned self] in self.allowsConnection($0) }
            self.zap = zap
            loop.addSocket(zap.socket) { zap.handleRequests() }
        }
        let router = try ZMQSocket(context: context, type: .router)
        try router.setRouterMandatory(true)
        // No handover: a second connection with a routing id in use cannot take it over (and so
        // receive what is sent to it); each message's key is checked too (Broker+Identity.swift).
        try router.setRouterHandover(false)
        try router.setLinger(milliseconds: 0)
        // Bounded pipes: past the mark a peer's messages wait in the outbox, where they are counted.
        try router.setSendHighWaterMark(configuration.limits.highWaterMark)
        try router.setReceiveHighWaterMark(configuration.limits.highWaterMark)
        try router.setMaxMessageSize(Int64(configuration.maxMessageSize))
        if let security = configuration.security {
            try router.setCurveServer(true)
            try router.setCurveSecretKey(security.keyPair.secretKey)
            try router.setZAPDomain("execnet")
        }
        var endpoints: [String] = []
        for endpoint in configuration.binds {
            do {
                endpoints.append(try router.bind(endpoint))
            } catch {
                throw ExecnetError(.transport, "cannot bind \(endpoint): \(error)", cause: error)
            }
        }
        shared.endpoints.withLock { $0 = endpoints }
        self.router = router
        loop.addSocket(router) { [unowned self] in self.handleRouter() }
        // Past the pipes' mark a peer's messages wait in the outbox, counted; one that leaves more
        // than its credit allows is cut off (`checkQueues`), and none may hold the whole memory cap.
        self.outbox = Outbox(socket: router, routed: true, cap: configuration.limits.maxInFlightBytes, logger: logger, loop: loop)
        scheduleTick(loop)
        logger.info("broker listening on \(endpoints.joined(separator: ", "))\(configuration.security == nil ? "" : " (CURVE)")")
    }

    func handle(_ command: BrokerCommand, _ loop: IOLoop) {
        switch command {
        case .beginShutdown(let deadline):
            guard !shuttingDown else { return }
            shuttingDown = true
            // The grace period's end, on the I/O thread's clock: nothing polls.
            loop.schedule(at: deadline) { [shared] in shared.endDrainWait() }
            logger.info("shutting down: asking \(table.workers.count) workers to exit")
            for address in table.workers.keys.map(\.bytes) {
                send(WireMessage(channelID: 0, type: .terminate, payload: []), to: address)
            }
            checkDrained()
        case .reloadKeys(let keys):
            reload(keys)
        }
    }

    func afterWakeUp(_ loop: IOLoop) {
        if !overCapPeers.isEmpty {
            let peers = overCapPeers
            overCapPeers = []
            for address in peers {
                cutOff(address, reason: "left more than \(configuration.limits.maxInFlightBytes) bytes unread (the broker's queue cap)")
            }
        }
        if outbox?.hasBacklog == true { checkQueues() }
    }

    func tearDown(_ loop: IOLoop) {
        shared.endDrainWait()
        outbox?.close()
        outbox = nil
        router?.close()
        router = nil
        zap?.close()
        zap = nil
    }

    // MARK: - Sending

    /// Sends to a peer (after `envelope`, the address frame a client's messages carry) and notes
    /// it for heartbeat bookkeeping.
    ///
    /// - Returns: `false` if the message was not delivered: the peer is not connected, or it was
    ///   refused at the outbox's cap (the peer is then cut off after this turn).
    @discardableResult
    func send(_ message: WireMessage, envelope: [UInt8]? = nil, to address: PeerAddress) -> Bool {
        guard let outbox else { return false }
        messagesOut += 1
        table.sent(to: address, now: .now)
        return delivered(outbox.send(message, envelope: envelope, to: address), to: address)
    }

    /// Whether an outbox outcome delivers (now or later); a refusal at the cap marks the peer.
    func delivered(_ outcome: OutboxOutcome, to address: PeerAddress) -> Bool {
        switch outcome {
        case .sent, .queued:
            return true
        case .overCap:
            if !overCapPeers.contains(address) { overCapPeers.append(address) }
            return false
        case .unreachable, .failed:
            return false
        }
    }

    /// Sends a control message to a client: `[address or empty][channel][type][payload]`.
    func sendToClient(_ client: PeerAddress, about address: PeerAddress, channelID: Int32 = 0, _ type: BrokerMessageType, _ payload: [UInt8] = []) {
        send(WireMessage(channelID: channelID, type: .broker(type), payload: payload), envelope: address, to: client)
    }

    /// Sends a control message to an agent or worker: `[channel][type][payload]`.
    func sendToPeer(_ address: PeerAddress, _ type: BrokerMessageType, _ payload: [UInt8] = [], channelID: Int32 = 0) {
        send(WireMessage(channelID: channelID, type: .broker(type), payload: payload), to: address)
    }

    // MARK: - Receiving

    /// Drains the ROUTER; any message from a peer refreshes its liveness first. Channel traffic
    /// between clients and their workers is forwarded in place (Broker+Forwarding.swift);
    /// everything else goes to the handlers in Broker+Peers.swift.
    private func handleRouter() {
        guard let router else { return }
        let now = ContinuousClock.now
        // Messages come in runs from one peer: its liveness is refreshed once per run.
        var lastHeard: PeerAddress = []
        lastNotedSent = []
        for _ in 0..<512 {
            let address: PeerAddress
            let more: Bool
            do {
                var first: (PeerAddress, Bool) = ([], false)
                guard try router.visitReceivedFrame(dontWait: true, { bytes, hasMore in first = (PeerAddress(bytes), hasMore) })
                else { return }
                (address, more) = first
            } catch {
                logger.error("ROUTER receive failed: \(error)")
                return
            }
            messagesIn += 1
            guard more else {
                rogue.warning("dropped a message with 1 frame", hexDump(address))
                continue
            }
            if address != lastHeard {
                table.heard(from: address, now: now)
                lastHeard = address
            }
            do {
                try route(from: address, router, now: now)
            } catch {
                logger.error("ROUTER receive failed: \(error)")
                return
            }
        }
    }

    // MARK: - Liveness

    private func scheduleTick(_ loop: IOLoop) {
        let period = min(configuration.liveness.interval / 2, .milliseconds(250))
        loop.schedule(at: .now.advanced(by: period)) { [unowned self, unowned loop] in
            self.tick()
            self.scheduleTick(loop)
        }
    }

    /// Purges silent peers, then heartbeats idle ones (only those we sent nothing to for an interval).
    private func tick() {
        let now = ContinuousClock.now
        for address in table.expiredPeers(now: now) { peerExpired(address) }
        for address in table.peersNeedingHeartbeat(now: now) {
            switch table.kind(of: address) {
            case .client: sendToClient(address, about: [], .heartbeat)
            case .agent, .worker: sendToPeer(address, .heartbeat)
            case nil: break
            }
        }
        updateRates(now: now)
        forgetChannelsOfGoneWorkers()
        metrics.publishIfDue(self, now: now)
        publishStatusIfRead(now: now)
        if shuttingDown { checkDrained() }
    }

    private func updateRates(now: ContinuousClock.Instant) {
        let elapsed = rateWindowStart.duration(to: now)
        guard elapsed >= .seconds(1) else { return }
        rateIn = Double(messagesIn - rateWindowIn) / elapsed.seconds
        rateOut = Double(messagesOut - rateWindowOut) / elapsed.seconds
        rateWindowStart = now
        rateWindowIn = messagesIn
        rateWindowOut = messagesOut
    }

    func checkDrained() {
        if shuttingDown && table.workers.isEmpty {
            shared.drained.store(true, ordering: .releasing)
            shared.endDrainWait()
        }
    }
}
