// A host agent: registers this host with a broker and starts one worker process per gateway the
// broker asks for (the same ProcessSupervisor and WorkerEnvironment as popen), applies
// chdir/env/nice through the worker's environment, reports each worker's exit from its pidfd at
// once, forwards its output line by line, and kills workers on request. Its BrokerSession
// heartbeats with the broker and registers again when the broker comes back.

import CExecnetShims
import CoreMetrics
import ExecnetCore
import ExecnetValue
import Logging
import Synchronization
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A user a root agent runs some clients' workers as.
public struct WorkerUser: Sendable, Hashable {
    /// The user's name, for logs.
    public var name: String
    /// The user id.
    public var uid: UInt32
    /// The primary group id (supplementary groups are dropped).
    public var gid: UInt32

    /// Creates a worker user.
    ///
    /// - Parameters:
    ///   - name: The name, for logs.
    ///   - uid: The user id.
    ///   - gid: The group id.
    public init(name: String, uid: UInt32, gid: UInt32) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }

    /// Looks a user up in the password database.
    ///
    /// - Throws: ``ExecnetError`` `invalidSpec` if there is no such user.
    public static func named(_ name: String) throws -> WorkerUser {
        guard let entry = getpwnam(name) else { throw ExecnetError(.invalidSpec, "no user named '\(name)'") }
        return WorkerUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }
}

/// How a host agent runs.
public struct AgentConfiguration: Sendable {
    /// The broker's endpoint, e.g. `tcp://broker:5555`.
    public var broker: String
    /// The host name clients ask for with `host=NAME`.
    public var name: String
    /// How many workers may run at once.
    public var slots: Int
    /// Worker executables the agent may run (absolute paths); the first is the default.
    public var allowedWorkers: [String]
    /// CURVE keys towards the broker. They never leave the agent: each worker gets the
    /// credential the broker minted for its SPAWN, on an inherited pipe.
    public var keys: CurveClientKeys?
    /// Whether the built-in `exec` task (any command, as the agent's user) may run in this agent's
    /// workers; off by default, since it makes allowing the stock worker the same as allowing
    /// everything.
    public var allowExec: Bool
    /// Heartbeat settings until the broker's WELCOME gives its own.
    public var liveness: LivenessSettings
    /// The user each client key's workers run as (Z85 public key to user); needs a root agent
    /// and a CURVE broker, which tells the agent each SPAWN's client key.
    public var clientUsers: [String: WorkerUser] = [:]
    /// The user the workers of clients not in ``clientUsers`` run as; `nil`: the agent's own.
    public var defaultUser: WorkerUser?
    /// Where the workers' stdout and stderr lines go, on the agent's I/O thread (it must return
    /// quickly); `nil`: the agent's stderr, each line prefixed with its gateway id (`[gw0] `).
    public var outputHandler: WorkerOutputHandler?
    /// The logger.
    public var logger: Logger

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - broker: The broker's endpoint.
    ///   - name: The host name clients ask for.
    ///   - slots: How many workers may run at once.
    ///   - allowedWorkers: Worker executables the agent may run; the first is the default.
    ///   - keys: CURVE keys, or `nil` for a loopback broker.
    ///   - allowExec: Whether the built-in `exec` task may run in this agent's workers.
    ///   - liveness: Heartbeat settings until the broker's WELCOME gives its own.
    ///   - logger: The logger.
    public init(broker: String, name: String, slots: Int, allowedWorkers: [String], keys: CurveClientKeys? = nil,
                allowExec: Bool = false, liveness: LivenessSettings = .default,
                logger: Logger = Logger(label: "execnet.agent")) {
        self.allowExec = allowExec
        self.liveness = liveness
        self.broker = broker
        self.name = name
        self.slots = slots
        self.allowedWorkers = allowedWorkers
        self.keys = keys
        self.logger = logger
    }
}

/// A running host agent.
public final class HostAgent: Sendable {
    private let io: IOThread<AgentConnection>
    private let shared: AgentShared
    /// The configuration it runs with.
    public let configuration: AgentConfiguration

    /// Starts the agent: connects to the broker and registers.
    ///
    /// - Parameter configuration: Broker, name, slots, allow-list, keys.
    /// - Throws: ``ExecnetError`` `invalidSpec` for an empty allow-list or no slots, `transport` if
    ///   the socket cannot be set up.
    public init(configuration: AgentConfiguration) throws {
        guard configuration.slots > 0 else { throw ExecnetError(.invalidSpec, "an agent needs at least one slot") }
        guard !configuration.allowedWorkers.isEmpty else {
            throw ExecnetError(.invalidSpec, "an agent needs at least one allowed worker executable")
        }
        if (!configuration.clientUsers.isEmpty || configuration.defaultUser != nil) && getuid() != 0 {
            throw ExecnetError(.invalidSpec, "running workers as other users (client users, default user) needs an agent running as root")
        }
        for path in configuration.allowedWorkers where access(path, X_OK) != 0 {
            throw ExecnetError(.workerNotFound, "allowed worker \(path) is not an executable file")
        }
        // Paths are compared (and run) resolved, so a symlinked build directory or `./worker`
        // names the same allowed file, and a symlink cannot be swapped between check and exec.
        var resolved = configuration
        resolved.allowedWorkers = configuration.allowedWorkers.map { resolvedPath($0) ?? $0 }
        let configuration = resolved
        let shared = AgentShared()
        let context = try ZMQContext()
        self.shared = shared
        self.configuration = configuration
        io = try IOThread(name: "execnet-agent") {
            AgentConnection(configuration: configuration, context: context, shared: shared)
        }
    }

    /// Whether the broker has accepted this agent's registration.
    public var isRegistered: Bool { shared.registered.load(ordering: .acquiring) }

    /// The number of worker processes running now.
    public var workerCount: Int { shared.workerCount.load(ordering: .acquiring) }

    /// Kills every worker and leaves. Idempotent.
    public func stop() async {
        await io.stopAndWait()
    }
}

/// What the agent shares with the thread that started it.
final class AgentShared: Sendable {
    let registered = Atomic<Bool>(false)
    let workerCount = Atomic<Int>(0)
}

/// Commands to the agent's I/O thread (none besides stop, which the thread handles itself).
enum AgentCommand: Sendable {}

/// The agent role of an I/O thread.
final class AgentConnection: IOThreadRole {
    typealias Command = AgentCommand

    let configuration: AgentConfiguration
    let context: ZMQContext
    let shared: AgentShared
    var logger: Logger { configuration.logger }
    private var dealer: ZMQSocket?
    /// Everything to the broker goes through it, in order (a send never drops silently).
    private var outbox: Outbox?
    /// Whether the outbox's backlog (the broker's pipe took nothing) was logged.
    private var backlogLogged = false
    /// The timer of the next LOAD_REPORT, while the broker asked for them.
    private var loadTimer: TimerHandle?
    private var session: BrokerSession
    /// The running workers (by address), set in setUp.
    private var processes: ProcessSupervisor<[UInt8]>?
    /// The gateway id of each running worker, by address.
    private var gatewayIDs: [[UInt8]: String] = [:]
    /// Each running worker's last stderr lines, sent with its WORKER_EXITED report.
    private var stderrTails: [[UInt8]: [String]] = [:]
    /// Stderr lines kept per worker, and characters per line.
    static let stderrTailLines = 5
    static let stderrTailLineLength = 500
    private weak var loop: IOLoop?
    /// The agent's metrics; made in setUp, by the metrics factory in force then. Events here are
    /// rare (a spawn, an exit), so they are recorded as they happen.
    private var metrics: AgentMetrics?

    init(configuration: AgentConfiguration, context: ZMQContext, shared: AgentShared) {
        self.configuration = configuration
        self.session = BrokerSession(settings: configuration.liveness, registers: true, now: .now)
        self.context = context
        self.shared = shared
    }

    func setUp(_ loop: IOLoop) throws {
        let metrics = AgentMetrics()
        metrics.slots.record(configuration.slots)
        metrics.workers.record(0)
        self.metrics = metrics
        let dealer = try makeBrokerDealer(context: context, kind: "a.\(configuration.name)", keys: configuration.keys)
        try dealer.connect(configuration.broker)
        self.dealer = dealer
        self.loop = loop
        let output = configuration.outputHandler ?? defaultOutputHandler
        processes = ProcessSupervisor(
            loop: loop,
            onLine: { [unowned self] address, stream, line in
                if stream == .stderr { self.keepStderrLine(address, line) }
                output(self.gatewayIDs[address] ?? "gw", stream, line)
            },
            onExit: { [unowned self] address, exit in self.workerExited(address, exit) })
        loop.addSocket(dealer) { [unowned self] in self.handleBroker() }
        outbox = Outbox(socket: dealer, routed: false, cap: Self.outboxCap, logger: logger, loop: loop)
        session = BrokerSession(settings: configuration.liveness, registers: true, now: .now)
        sayHello()
        scheduleTick(loop)
    }

    func handle(_ command: AgentCommand, _ loop: IOLoop) {}

    func afterWakeUp(_ loop: IOLoop) {}

    func tearDown(_ loop: IOLoop) {
        stderrTails = [:]
        processes?.terminateAll(within: .seconds(1))
        processes = nil
        gatewayIDs = [:]
        loadTimer?.cancel()
        loadTimer = nil
        outbox?.close()
        outbox = nil
        dealer?.close()
    }

    // MARK: - Broker

    /// The most bytes waiting for the broker; past it the backlog is dropped and the agent
    /// registers again (a broker that read nothing for that long has forgotten it anyway).
    static let outboxCap = 16 << 20

    /// Sends to the broker through the outbox: a message the broker's pipe does not take now
    /// (no connection: a failed handshake, say) waits, in order, and goes when it does.
    private func send(_ type: BrokerMessageType, _ payload: [UInt8] = []) {
        guard let outbox else { return }
        session.sent(now: .now)
        switch outbox.send(WireMessage(channelID: 0, type: .broker(type), payload: payload)) {
        case .sent:
            break
        case .queued:
            if !backlogLogged {
                backlogLogged = true
                logger.warning("broker \(configuration.broker) takes no messages now (not connected, or the connection's handshake failed); they wait in order",
                               metadata: ["message": "\(type)", "queued_bytes": "\(outbox.queuedBytes)"])
            }
        case .overCap(let queued):
            logger.error("broker \(configuration.broker) took nothing while \(queued) bytes waited; dropping them and registering again",
                         metadata: ["message": "\(type)"])
            outbox.forget([])
            backlogLogged = false
            stopLoadReports()
            setRegistered(false)
            sayHello()
        case .unreachable, .failed:
            // A DEALER is never unreachable; a failure was logged by the outbox.
            logger.error("could not send \(type) to broker \(configuration.broker)")
        }
    }

    /// Logs once when a backlog logged by `send` has gone out.
    private func noteBacklogDrained() {
        guard backlogLogged, outbox?.hasBacklog == false else { return }
        backlogLogged = false
        logger.info("broker \(configuration.broker) takes messages again; the backlog went out")
    }

    // MARK: - Load reports

    /// Starts LOAD_REPORTs every `milliseconds` (a WELCOME's `load_report_ms`): only a broker that
    /// asks for them gets them, so an older broker never sees a type it does not know.
    private func startLoadReports(_ milliseconds: Int64?) {
        stopLoadReports()
        guard let milliseconds, LoadReport.intervalRange.contains(milliseconds), let loop else { return }
        reportLoad(every: .milliseconds(milliseconds), loop)
    }

    private func stopLoadReports() {
        loadTimer?.cancel()
        loadTimer = nil
    }

    private func reportLoad(every interval: Duration, _ loop: IOLoop) {
        if let report = HostLoadSampler.sample(host: configuration.name) {
            send(.loadReport, report.encoded)
        }
        loadTimer = loop.schedule(at: .now.advanced(by: interval)) { [unowned self, unowned loop] in
            self.reportLoad(every: interval, loop)
        }
    }

    private func sayHello() {
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["name"] = .string(configuration.name)
        hello["slots"] = .int(Int64(configuration.slots))
        hello["hostname"] = .string(hostName())
        hello["pid"] = .int(Int64(getpid()))
        send(.agentHello, hello.encoded)
        session.helloSent(now: .now)
    }

    private func setRegistered(_ registered: Bool) {
        shared.registered.store(registered, ordering: .releasing)
    }

    private func handleBroker() {
        guard let dealer else { return }
        // Before anything read now is judged, notice a pause of our own.
        if let gap = session.noticePause(now: .now) { resumed(after: gap) }
        var received = 0
        defer {
            // Any traffic from the broker is a sign of life (one clock read per batch).
            if received > 0 { session.heard(now: .now) }
        }
        for _ in 0..<512 {
            guard let frames = try? dealer.receive(dontWait: true) else { return }
            received += 1
            guard let message = try? WireMessage.parse(frames) else {
                logger.warning("dropped a malformed message from the broker")
                continue
            }
            switch message.type {
            case .heartbeat:
                break
            case .welcome:
                let offered = LivenessSettings(welcome: ControlPayload(decoding: message.payload))
                guard session.welcomed(settings: offered, now: .now) else { break }
                logger.info("registered with broker \(configuration.broker) as \(configuration.name)")
                setRegistered(true)
                startLoadReports(ControlPayload(decoding: message.payload)?.int("load_report_ms"))
            case .unknownPeer:
                // The broker restarted or forgot this agent: register again.
                guard session.unknownPeer() else { break }
                stopLoadReports()
                setRegistered(false)
                sayHello()
            case .spawn:
                spawn(message.payload)
            case .spawnFailed:
                // The broker refused this agent's registration (its key is not an agent key, or
                // its name belongs to another key).
                let reason = ControlPayload(decoding: message.payload)?.string("reason") ?? "no reason given"
                logger.error("\(reason)")
            case .kill:
                guard let order = ControlPayload(decoding: message.payload), let address = order.bytes("address") else { break }
                processes?.signal(address, Int32(truncatingIfNeeded: order.int("signal") ?? Int64(SIGKILL)))
            default:
                logger.warning("dropped \(message.type) from the broker")
            }
        }
    }

    private func scheduleTick(_ loop: IOLoop) {
        loop.schedule(at: .now.advanced(by: session.tickPeriod)) { [unowned self, unowned loop] in
            self.tick()
            self.scheduleTick(loop)
        }
    }

    /// Heartbeat when idle; a silent broker means registering again (Paranoid Pirate's reconnect).
    private func tick() {
        noteBacklogDrained()
        let wasReady = session.isReady
        switch session.tick(now: .now) {
        case .none:
            break
        case .sendHello:
            sayHello()
        case .sendHeartbeat:
            send(.heartbeat)
        case .brokerLost:
            if wasReady { logger.warning("broker \(configuration.broker) stopped answering heartbeats; registering again") }
            stopLoadReports()
            setRegistered(false)
            sayHello()
        case .resumedAfterPause(let gap):
            resumed(after: gap)
        }
    }

    /// This agent was not scheduled for a whole window: it speaks first, and a broker that forgot
    /// it meanwhile answers UNKNOWN_PEER.
    private func resumed(after gap: Duration) {
        logger.debug("not scheduled for \(gap); liveness of broker \(configuration.broker) starts afresh")
        send(.heartbeat)
    }

    // MARK: - Workers

    private func spawn(_ payload: [UInt8]) {
        guard let request = ControlPayload(decoding: payload), let address = request.bytes("address") else {
            logger.warning("dropped a malformed SPAWN")
            return
        }
        func fail(_ reason: String) {
            logger.warning("cannot start a worker: \(reason)")
            metrics?.spawnFailures.increment()
            var report = ControlPayload()
            report["address"] = .bytes(address)
            report["reason"] = .string("host \(configuration.name): \(reason)")
            send(.spawnFailed, report.encoded)
        }
        guard let processes else { return }
        guard processes.count < configuration.slots else { return fail("no free slot") }
        let requested = request.string("worker") ?? configuration.allowedWorkers[0]
        guard let executable = resolvedPath(requested), configuration.allowedWorkers.contains(executable) else {
            return fail("worker \(requested) is not on this agent's allow-list")
        }
        let gatewayID = request.string("gateway") ?? "gw"
        // With CURVE the worker authenticates with the credential the broker minted for this SPAWN
        // (valid for this worker's address only), read once from an inherited pipe; the agent's
        // own secret never leaves the agent.
        let settings = WorkerEnvironment.Settings(
            endpoint: configuration.broker, routingID: address, gatewayID: gatewayID,
            chdir: request.string("chdir"), nice: request.int("nice"), liveness: session.settings,
            execDisabled: !configuration.allowExec, curveServerKey: configuration.keys?.serverKey)
        let environment: [String]
        do {
            environment = try WorkerEnvironment.build(client: WorkerEnvironment.clientVariables(request["env"]), settings: settings)
        } catch {
            return fail(error.description)
        }
        var credential: [UInt8]?
        if configuration.keys != nil {
            guard let secret = request.string("credential"), (try? CurveKeyPair(secretKey: secret)) != nil else {
                return fail("the broker sent no worker credential")
            }
            credential = Array(secret.utf8)
        }
        // The broker names the SPAWN's client key; a client cannot choose it.
        let user = request.string("client_key").flatMap { configuration.clientUsers[$0] } ?? configuration.defaultUser
        let pid: pid_t
        do {
            pid = try processes.spawn(address, executable: executable, environment: environment, credential: credential,
                                      user: user.map { (uid: $0.uid, gid: $0.gid) })
        } catch {
            return fail("\(error)")
        }
        gatewayIDs[address] = gatewayID
        shared.workerCount.store(processes.count, ordering: .releasing)
        metrics?.started.increment()
        metrics?.workers.record(processes.count)
        var report = ControlPayload()
        report["address"] = .bytes(address)
        report["pid"] = .int(Int64(pid))
        report["host"] = .string(configuration.name)
        send(.spawned, report.encoded)
    }

    /// A worker has exited and was reaped, its last output lines given: the broker is told.
    private func workerExited(_ address: [UInt8], _ exit: WorkerExit) {
        let gatewayID = gatewayIDs.removeValue(forKey: address) ?? "gw"
        shared.workerCount.store(processes?.count ?? 0, ordering: .releasing)
        logger.debug("worker of \(gatewayID) \(exit)", metadata: ["gateway": "\(gatewayID)", "host": "\(configuration.name)"])
        metrics?.workers.record(processes?.count ?? 0)
        metrics?.recordExit(exit)
        var report = ControlPayload()
        report["address"] = .bytes(address)
        report.setWorkerExit(exit)
        if let tail = stderrTails.removeValue(forKey: address), !tail.isEmpty {
            report["stderr"] = .list(tail.map { .string($0) })
        }
        send(.workerExited, report.encoded)
    }

    /// Keeps a worker's stderr line for its exit report (the last few, each bounded).
    private func keepStderrLine(_ address: [UInt8], _ line: [UInt8]) {
        var tail = stderrTails[address] ?? []
        tail.append(String(decoding: line.prefix(Self.stderrTailLineLength), as: UTF8.self))
        if tail.count > Self.stderrTailLines { tail.removeFirst() }
        stderrTails[address] = tail
    }
}
/// `path` with symlinks, `.` and `..` resolved (realpath(3)), or `nil` if it does not exist.
func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// The host agent's metric objects (swift-metrics' CoreMetrics).
final class AgentMetrics {
    let started = Counter(label: "execnet_agent_workers_started_total")
    let spawnFailures = Counter(label: "execnet_agent_spawn_failures_total")
    let workers = Gauge(label: "execnet_agent_workers")
    let slots = Gauge(label: "execnet_agent_slots")
    private var exits: [String: Counter] = [:]

    /// Counts a worker's exit under its cause: `exited`, `failed`, or the signal's name.
    func recordExit(_ exit: WorkerExit) {
        let cause: String
        switch exit {
        case .exited(0): cause = "exited"
        case .exited: cause = "failed"
        case .signaled(let signal): cause = signalName(signal)
        case .heartbeatLost: cause = "heartbeat_lost"
        }
        let counter = exits[cause] ?? Counter(label: "execnet_agent_worker_exits_total", dimensions: [("cause", cause)])
        exits[cause] = counter
        counter.increment()
    }
}
