// The client's embedded hub: a ROUTER bound to a private ipc endpoint, on the I/O thread. It
// launches workers, routes their frames to gateway connections, watches each worker's pidfd and
// forwards its stdout/stderr. Everything here runs on the I/O thread only.

import CExecnetShims
import ExecnetCore
import Logging
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Commands to the hub.
enum HubCommand: Sendable {
    /// Send a message to the worker with this routing id.
    case send(routingID: [UInt8], message: WireMessage)
    /// Spawn a worker for a gateway.
    case launch(WorkerLaunch)
    /// Send a signal to a gateway's worker process.
    case signal(routingID: [UInt8], signal: Int32)
    /// Ask a broker for a worker for a gateway.
    case launchRemote(RemoteLaunch)
    /// Send a message to a broker gateway's worker, through its broker link.
    case sendRemote(link: BrokerLinkKey, address: [UInt8], message: WireMessage)
    /// Kill a broker gateway's worker (or cancel its SPAWN if it has not been sent yet).
    case killRemote(link: BrokerLinkKey, address: [UInt8], signal: Int32)
}

/// Which output stream of a worker a line came from.
public enum WorkerOutputStream: Sendable {
    /// The worker's standard output.
    case stdout
    /// The worker's standard error.
    case stderr
}

/// The hub role of the client's I/O thread. See the file comment.
final class Hub: IOThreadRole {
    typealias Command = HubCommand

    struct Peer {
        let gateway: Gateway
        var pidfd: Int32 = -1
        var pid: pid_t = 0
        var outputFDs: [Int32] = []
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
    private var outbox: RouterOutbox?
    /// Partial output lines per pipe fd.
    private var partialLines: [Int32: [UInt8]] = [:]
    /// The loop this role runs on (set in setUp). Held strongly: the loop's handlers hold the hub
    /// unowned, so there is no cycle, and a weak reference would slow every retain of the loop.
    private(set) var loop: IOLoop?
    /// Links to brokers, one per endpoint and key set (Hub+Broker.swift).
    var links: [BrokerLinkKey: BrokerLink] = [:]
    /// Liveness of local workers (Hub+Liveness.swift).
    var localLiveness = LocalLivenessState()
    /// Where dropped peer input is logged, at most once per kind and interval.
    lazy var rogue = RateLimitedLogger(logger: logger, timers: loop?.timers)

    init(endpoint: String, context: ZMQContext, logger: Logger) {
        self.endpoint = endpoint
        self.context = context
        self.logger = logger
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
        self.outbox = RouterOutbox(socket: router, logger: logger)
        self.loop = loop
        loop.addSocket(router) { [unowned self] in self.handleRouter() }
    }

    func handle(_ command: HubCommand, _ loop: IOLoop) {
        switch command {
        case .send(let routingID, let message):
            send(message.frames, to: routingID, loop)
        case .launch(let launch):
            handleLaunch(launch, loop)
        case .signal(let routingID, let signal):
            if let peer = peers[PeerKey(routingID)], peer.pidfd >= 0 {
                _ = cexecnetSignal(peer.pidfd, signal)
            }
        case .launchRemote(let launch):
            handleRemoteLaunch(launch, loop)
        case .sendRemote(let key, let address, let message):
            links[key]?.send(message, to: address)
        case .killRemote(let key, let address, let signal):
            killRemote(key, address: address, signal: signal)
        }
    }

    func afterWakeUp(_ loop: IOLoop) {
        outbox?.flush(loop)
    }

    func tearDown(_ loop: IOLoop) {
        for link in links.values { link.close() }
        links = [:]
        for (_, peer) in peers where peer.pidfd >= 0 {
            // Not reaped yet, so the group id is still the worker's.
            WorkerProcess.killGroup(peer.pid)
            _ = cexecnetSignal(peer.pidfd, SIGKILL)
        }
        outbox = nil
        router?.close()
        router = nil
    }

    // MARK: - Sending

    private func send(_ frames: [[UInt8]], to routingID: [UInt8], _ loop: IOLoop) {
        guard let outbox else { return }
        if !outbox.send(frames, to: routingID) {
            logger.debug("dropped a message for \(String(decoding: routingID, as: UTF8.self)): peer not connected")
        }
        if outbox.hasBacklog { loop.retryInterval = .milliseconds(1) }
    }

    // MARK: - Receiving

    /// Drains the ROUTER: each message is a routing id and three protocol frames.
    private func handleRouter() {
        guard let router else { return }
        // A budget keeps the mailbox and pidfds served under a flood.
        for _ in 0..<512 {
            let received: ReceivedWireMessage
            do {
                guard let next = try router.receiveWire(routed: true) else { return }
                received = next
            } catch {
                logger.error("ROUTER receive failed: \(error)")
                return
            }
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
            switch message.type {
            case .hello:
                handleHello(message, gateway)
            case .bye:
                if let loop { send(WireMessage(channelID: 0, type: .farewell, payload: []).frames, to: routingID, loop) }
                gateway.byeReceived()
            case .data, .close, .closeError, .credit:
                gateway.connection.dispatch(message)
            default:
                rogue.warning("dropped a message that is not a worker message", "\(message.type) from \(gateway.id)")
            }
        }
    }

    func handleHello(_ message: WireMessage, _ gateway: Gateway) {
        guard case .dict(let dict)? = try? gateway.connection.decode(message.payload) else {
            rogue.warning("dropped a malformed hello", "from \(gateway.id): \(hexDump(message.payload))")
            return
        }
        func text(_ key: String) -> String {
            if case .string(let value)? = dict[.string(key)] { return value }
            return ""
        }
        guard case .int(let version)? = dict[.string("protocol")], version == wireProtocolVersion else {
            let theirs = dict[.string("protocol")].map { "\($0)" } ?? "none"
            gateway.failStart(ExecnetError(
                .protocolVersionMismatch,
                "worker speaks protocol version \(theirs), this client speaks version \(wireProtocolVersion)",
                gatewayID: gateway.id))
            gateway.kill(signal: SIGKILL)
            return
        }
        var pid: Int64 = 0
        if case .int(let value)? = dict[.string("pid")] { pid = value }
        gateway.helloReceived(RemoteInfo(
            pid: pid, cwd: text("cwd"), hostname: text("hostname"),
            executable: text("executable"), platform: text("platform")))
    }

    // MARK: - Processes

    private func handleLaunch(_ launch: WorkerLaunch, _ loop: IOLoop) {
        let gateway = launch.gateway
        let spawned: SpawnedWorker
        do {
            // A process group of its own, killed when it exits; SIGKILL when this (I/O) thread ends.
            spawned = try WorkerProcess.spawn(
                executable: launch.executable, arguments: [], environment: launch.environment,
                newProcessGroup: true, parentDeathSignal: SIGKILL)
        } catch {
            gateway.failStart(error)
            return
        }
        gateway.spawned(pid: spawned.pid)
        peers[PeerKey(gateway.routingID)] = Peer(
            gateway: gateway, pidfd: spawned.pidfd, pid: spawned.pid, outputFDs: [spawned.stdout, spawned.stderr])
        loop.addFileDescriptor(spawned.pidfd) { [unowned self, unowned loop] in
            self.handleExit(gateway.routingID, loop)
        }
        for (fd, stream) in [(spawned.stdout, WorkerOutputStream.stdout), (spawned.stderr, .stderr)] {
            loop.addFileDescriptor(fd) { [unowned self, unowned loop] in
                self.handleOutput(fd, stream, gateway, loop)
            }
        }
        startLocalLiveness(loop)
    }

    private func handleExit(_ routingID: [UInt8], _ loop: IOLoop) {
        guard let found = peers[PeerKey(routingID)], found.pidfd >= 0 else { return }
        // What the worker started dies with it (its process group), then it is reaped.
        guard let exit = WorkerProcess.reap(pidfd: found.pidfd, killingGroup: found.pid) else { return }
        // Whatever the worker sent before it died is taken first.
        handleRouter()
        for (index, fd) in found.outputFDs.enumerated() where peers[PeerKey(routingID)]?.outputFDs.contains(fd) == true {
            handleOutput(fd, index == 0 ? .stdout : .stderr, found.gateway, loop)
        }
        var peer = peers[PeerKey(routingID)] ?? found
        loop.removeFileDescriptor(peer.pidfd)
        close(peer.pidfd)
        peer.pidfd = -1
        peers[PeerKey(routingID)] = nil
        outbox?.forget(routingID)
        logger.debug("worker of \(peer.gateway.id) (pid \(peer.pid)) \(exit)")
        peer.gateway.processExited(exit, cause: peer.unresponsive, stderr: peer.stderrTail)
    }

    private func handleOutput(_ fd: Int32, _ stream: WorkerOutputStream, _ gateway: Gateway, _ loop: IOLoop) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                var pending = partialLines[fd, default: []]
                pending.append(contentsOf: buffer[0..<count])
                let outputHandler = ExecnetSettings.outputHandler
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[..<newline])
                    outputHandler(gateway.id, stream, line)
                    if stream == .stderr { keepStderrLine(line, gateway) }
                    pending.removeSubrange(...newline)
                }
                partialLines[fd] = pending
                continue
            }
            if count < 0 && (errno == EINTR) { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            // End of file (or an error): flush the last partial line and stop watching.
            if let rest = partialLines.removeValue(forKey: fd), !rest.isEmpty {
                ExecnetSettings.outputHandler(gateway.id, stream, rest)
                if stream == .stderr { keepStderrLine(rest, gateway) }
            }
            loop.removeFileDescriptor(fd)
            close(fd)
            if var peer = peers[PeerKey(gateway.routingID)] {
                peer.outputFDs.removeAll { $0 == fd }
                peers[PeerKey(gateway.routingID)] = peer
            }
            return
        }
    }
}

extension Hub {
    /// Keeps a worker's last few standard-error lines (each at most 500 bytes).
    private func keepStderrLine(_ line: [UInt8], _ gateway: Gateway) {
        let key = PeerKey(gateway.routingID)
        guard var peer = peers[key] else { return }
        peer.stderrTail.append(String(decoding: line.prefix(500), as: UTF8.self))
        if peer.stderrTail.count > Hub.stderrTailLines { peer.stderrTail.removeFirst() }
        peers[key] = peer
    }
}

/// Sends a signal through a pidfd.
func cexecnetSignal(_ pidfd: Int32, _ signal: Int32) -> Int32 {
    cexecnet_pidfd_send_signal(pidfd, signal)
}
