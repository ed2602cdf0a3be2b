// The client's embedded hub: a ROUTER bound to a private ipc endpoint, on the I/O thread. It
// launches workers, routes their frames to gateway connections, and has its ProcessSupervisor
// watch each worker's pidfd and forward its stdout/stderr lines. Everything here runs on the I/O
// thread only.
//
// Gateways talk to the hub one way, with commands (`HubCommand`); the hub answers with events
// (`GatewayEvent`) and hands channel frames to the gateway's connection, and acts itself on what
// it learns (a worker that broke the protocol, or speaks another version, is killed here).

import CExecnetShims
import ExecnetCore
import Logging
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Commands to the hub.
enum HubCommand: Sendable {
    /// Send a message to a gateway's worker.
    case send(WorkerRoute, WireMessage)
    /// Spawn a worker for a popen gateway.
    case launch(WorkerLaunch)
    /// Ask a broker for a worker for a broker gateway.
    case launchRemote(RemoteLaunch)
    /// Send a signal to a gateway's worker process (a broker gateway's agent sends it; a worker
    /// whose SPAWN has not been sent yet is never started).
    case kill(WorkerRoute, signal: Int32)
    /// Publish the metrics now (if a backend was bootstrapped), then resume.
    case publishMetrics(CheckedContinuation<Void, Never>)
}

/// How the hub reaches a gateway's worker, decided once from the gateway's spec.
enum WorkerRoute: Sendable, Hashable {
    /// A popen worker, on the hub's ROUTER, by routing id.
    case local([UInt8])
    /// A worker behind a broker, on the hub's link to that broker, by worker address.
    case broker(BrokerBinding, address: [UInt8])
}

/// The hub role of the client's I/O thread. See the file comment.
final class Hub: IOThreadRole {
    typealias Command = HubCommand

    struct Peer {
        let gateway: Gateway
        var pid: pid_t = 0
        /// The worker's last standard-error lines, for the cause its channels end with.
        var stderrTail: [String] = []
        /// When the worker was first seen stopped, in the current run of stopped states (Hub+Liveness).
        var stoppedSince: ContinuousClock.Instant?
        /// Set when the worker was killed as unresponsive: the cause its channels end with.
        var unresponsive: String?
    }

    /// How many standard-error lines a dead worker's channels report.
    static let stderrTailLines = 5

    let endpoint: String
    let logger: Logger
    let context: ZMQContext
    private var router: ZMQSocket?
    var peers: [PeerKey: Peer] = [:] {
        didSet {
            // Only a gateway still registered may be found through the one-entry cache.
            if let recent = recentGateway, peers[PeerKey(recent.routingID)]?.gateway !== recent { recentGateway = nil }
        }
    }
    /// The gateway whose message came last: a stream from one worker skips the hash of its address.
    private var recentGateway: Gateway?
    private var outbox: Outbox?
    /// The local workers' processes, by routing id (set in setUp).
    var processes: ProcessSupervisor<PeerKey>?
    /// The loop this role runs on (set in setUp). Held strongly: the loop's handlers hold the hub
    /// unowned, so there is no cycle, and a weak reference would slow every retain of the loop.
    private(set) var loop: IOLoop?
    /// Links to brokers, one per endpoint and key set (Hub+Broker.swift).
    var links: [BrokerLinkKey: BrokerLink] = [:]
    /// Liveness of local workers (Hub+Liveness.swift).
    var localLiveness = LocalLivenessState()
    /// Where dropped peer input is logged, at most once per kind and interval.
    lazy var rogue = RateLimitedLogger(logger: logger, timers: loop?.timers)
    /// Messages and bytes to and from workers (ClientMetrics.swift).
    let traffic = HubTraffic()
    /// The process's rare events (gateway starts, deaths, terminate outcomes).
    let counters: ClientCounters
    private let metricsPublisher = ClientMetricsPublisher()
    /// How often the metrics are published (when a backend was bootstrapped).
    static let metricsInterval: Duration = .seconds(1)

    init(endpoint: String, context: ZMQContext, logger: Logger, counters: ClientCounters = ClientCounters()) {
        self.endpoint = endpoint
        self.context = context
        self.logger = logger
        self.counters = counters
    }

    // MARK: - IOThreadRole

    func setUp(_ loop: IOLoop) throws {
        let router = try ZMQSocket(context: context, type: .router)
        try router.setRouterMandatory(true)
        try router.setLinger(milliseconds: 0)
        try router.setSendHighWaterMark(0)
        try router.setReceiveHighWaterMark(0)
        try router.bind(endpoint)
        self.router = router
        self.loop = loop
        processes = ProcessSupervisor(
            loop: loop,
            onLine: { [unowned self] key, stream, line in self.workerWrote(line, stream, key) },
            onExit: { [unowned self] key, exit in self.handleExit(key, exit) })
        loop.addSocket(router) { [unowned self] in self.handleRouter() }
        scheduleMetrics(loop)
        self.outbox = Outbox(socket: router, routed: true, logger: logger, loop: loop)
    }

    // MARK: - Metrics

    private func scheduleMetrics(_ loop: IOLoop) {
        loop.schedule(at: .now.advanced(by: Hub.metricsInterval)) { [unowned self, unowned loop] in
            self.publishMetrics()
            self.scheduleMetrics(loop)
        }
    }

    /// Publishes the counts (nothing when no metrics backend was bootstrapped).
    func publishMetrics() {
        var alive = 0
        var channels = 0
        func add(_ gateway: Gateway) {
            alive += 1
            channels += gateway.connection.registeredChannelCount
        }
        for peer in peers.values { add(peer.gateway) }
        for link in links.values { for gateway in link.gateways.values { add(gateway) } }
        metricsPublisher.publish(counters: counters, traffic: traffic, gatewaysAlive: alive, channelsOpen: channels)
    }

    func handle(_ command: HubCommand, _ loop: IOLoop) {
        switch command {
        case .send(let route, let message):
            traffic.sent(message.payload.count)
            deliver(message, to: route)
        case .launch(let launch):
            handleLaunch(launch, loop)
        case .launchRemote(let launch):
            handleRemoteLaunch(launch, loop)
        case .kill(let route, let signal):
            kill(route, signal: signal)
        case .publishMetrics(let done):
            publishMetrics()
            done.resume()
        }
    }

    func afterWakeUp(_ loop: IOLoop) {}

    func tearDown(_ loop: IOLoop) {
        for link in links.values { link.close() }
        links = [:]
        processes?.terminateAll(within: .seconds(1))
        processes = nil
        outbox?.close()
        outbox = nil
        router?.close()
        router = nil
    }

    // MARK: - Sending

    /// Sends a message to a gateway's worker, on the ROUTER or on its broker link.
    private func deliver(_ message: WireMessage, to route: WorkerRoute) {
        switch route {
        case .local(let routingID):
            send(message, to: routingID)
        case .broker(let key, let address):
            links[key]?.send(message, to: address)
        }
    }

    /// Signals a gateway's worker: through its pidfd, or its broker.
    private func kill(_ route: WorkerRoute, signal: Int32) {
        switch route {
        case .local(let routingID):
            processes?.signal(PeerKey(routingID), signal)
        case .broker(let key, let address):
            killRemote(key, address: address, signal: signal)
        }
    }

    /// Sends to a local worker through the outbox (a full pipe queues; the cap is logged there).
    private func send(_ message: WireMessage, to routingID: [UInt8]) {
        if outbox?.send(message, to: routingID) == .unreachable {
            logger.debug("dropped \(message.type) for \(String(decoding: routingID, as: UTF8.self)): peer not connected")
        }
    }

    // MARK: - Receiving

    /// Messages the hub reads from one socket per loop turn before it serves the rest of the loop.
    static let drainMessages = 512
    /// Payload bytes the hub reads from one socket per loop turn (the message that crosses it
    /// included). Between turns the loop runs the tasks on the I/O thread, so a consumer there
    /// takes large items as they come instead of after a whole window of copies.
    static let drainBytes = 512 << 10

    /// Drains the ROUTER: each message is a routing id and three protocol frames.
    ///
    /// - Parameter byteBudget: Payload bytes to read at most in this turn (a worker's exit reads
    ///   what it sent before dying by the message budget alone, as before).
    private func handleRouter(byteBudget: Int = Hub.drainBytes) {
        guard let router else { return }
        // A budget keeps the mailbox and pidfds served under a flood, and the consumers on the
        // I/O thread close behind the copies (memory: issue 16).
        var bytes = 0
        for _ in 0..<Hub.drainMessages where bytes < byteBudget {
            let received: ReceivedWireMessage
            do {
                guard let next = try router.receiveWire(routed: true) else { return }
                received = next
            } catch {
                logger.error("ROUTER receive failed: \(error)")
                return
            }
            bytes += received.message?.payload.count ?? 0
            let routingID = received.routingID
            let gateway: Gateway
            if let recent = recentGateway, recent.routingID == routingID {
                gateway = recent
            } else if let peer = peers[PeerKey(routingID)] {
                gateway = peer.gateway
                recentGateway = gateway
            } else {
                rogue.warning("dropped a message from an unknown peer", hexDump(routingID))
                continue
            }
            let message: WireMessage
            do {
                message = try received.get()
            } catch {
                rogue.warning("dropped a malformed message from a worker", "\(gateway.id): \(error)")
                continue
            }
            dispatch(message, from: gateway, link: nil)
        }
    }

    /// What a gateway's worker sent, read from the ROUTER or from `link` (a broker gateway's): one
    /// dispatch for both kinds of gateway. Channel frames go to the gateway's connection, the rest
    /// become events for the gateway.
    func dispatch(_ message: WireMessage, from gateway: Gateway, link: BrokerLink?) {
        switch message.type {
        case .data, .close, .closeError, .credit:
            // A worker that broke the protocol (the connection has ended its channels) is lying: kill it.
            traffic.received(message.payload.count)
            if gateway.connection.dispatch(message) { kill(gateway.route, signal: SIGKILL) }
        case .hello:
            handleHello(message, gateway)
        case .bye:
            deliver(WireMessage(channelID: 0, type: .farewell, payload: []), to: gateway.route)
            gateway.post(.bye)
        default:
            // SPAWNED, SPAWN_FAILED and PEER_LOST come from a broker, about its gateways.
            if let link, handleBrokerReport(message, gateway, link) { return }
            rogue.warning("dropped a message that is not a worker message", "\(message.type) from \(gateway.id)")
        }
    }

    private func handleHello(_ message: WireMessage, _ gateway: Gateway) {
        guard let hello = ControlPayload(decoding: message.payload) else {
            rogue.warning("dropped a malformed hello", "from \(gateway.id): \(hexDump(message.payload))")
            return
        }
        guard hello.int("protocol") == wireProtocolVersion else {
            let theirs = hello["protocol"].map { "\($0)" } ?? "none"
            gateway.post(.startFailed(ExecnetError(
                .protocolVersionMismatch,
                "worker speaks protocol version \(theirs), this client speaks version \(wireProtocolVersion)",
                gatewayID: gateway.id)))
            kill(gateway.route, signal: SIGKILL)
            return
        }
        gateway.post(.hello(RemoteInfo(fields: hello.fields)))
    }

    // MARK: - Processes

    private func handleLaunch(_ launch: WorkerLaunch, _ loop: IOLoop) {
        let gateway = launch.gateway
        guard let processes else { return gateway.post(.startFailed(ExecnetError(.invalidState, "the hub has stopped"))) }
        let key = PeerKey(gateway.routingID)
        let pid: pid_t
        do {
            pid = try processes.spawn(key, executable: launch.executable, arguments: launch.arguments,
                                      environment: launch.environment, holdingStdin: launch.holdsStdin)
        } catch {
            gateway.post(.startFailed(error))
            return
        }
        gateway.post(.spawned(pid: pid, host: nil))
        peers[key] = Peer(gateway: gateway, pid: pid)
        startLocalLiveness(loop)
    }

    /// The worker has exited and was reaped, its last output lines given.
    private func handleExit(_ key: PeerKey, _ exit: WorkerExit) {
        // Whatever the worker sent before it died is taken first.
        handleRouter(byteBudget: .max)
        guard let peer = peers.removeValue(forKey: key) else { return }
        outbox?.forget(peer.gateway.routingID)
        logger.debug("worker of \(peer.gateway.id) (pid \(peer.pid)) \(exit)")
        counters.recordDeath(exit, unresponsive: peer.unresponsive != nil)
        peer.gateway.post(.exited(exit, cause: peer.unresponsive, stderr: peer.stderrTail))
    }

    /// A line of a worker's output: to the output handler, and a stderr line to the worker's tail.
    private func workerWrote(_ line: [UInt8], _ stream: WorkerOutputStream, _ key: PeerKey) {
        guard var peer = peers[key] else { return }
        ExecnetSettings.outputHandler(peer.gateway.id, stream, line)
        guard stream == .stderr else { return }
        // The last few standard-error lines, each at most 500 bytes.
        peer.stderrTail.append(String(decoding: line.prefix(500), as: UTF8.self))
        if peer.stderrTail.count > Hub.stderrTailLines { peer.stderrTail.removeFirst() }
        peers[key] = peer
    }
}

/// Sends a signal through a pidfd.
func cexecnetSignal(_ pidfd: Int32, _ signal: Int32) -> Int32 {
    cexecnet_pidfd_send_signal(pidfd, signal)
}
