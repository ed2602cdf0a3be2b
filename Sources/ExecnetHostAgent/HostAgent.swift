// A host agent: registers this host with a broker and starts one worker process per gateway the
// broker asks for (the same isolation as popen), applies chdir/env/nice through the worker's
// environment, reports each worker's exit from its pidfd at once, and kills workers on request.
// It heartbeats with the broker and registers again when the broker comes back.

import CExecnetShims
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

    private struct RunningWorker {
        let address: [UInt8]
        let gatewayID: String
        let pid: pid_t
        let pidfd: Int32
        var outputs: [Int32]
    }

    let configuration: AgentConfiguration
    let context: ZMQContext
    let shared: AgentShared
    var logger: Logger { configuration.logger }
    private var dealer: ZMQSocket?
    private var settings: LivenessSettings
    private var registered = false
    private var expiry = ContinuousClock.now
    private var lastSent = ContinuousClock.now
    private var lastHello = ContinuousClock.now
    private var workers: [[UInt8]: RunningWorker] = [:]
    private weak var loop: IOLoop?

    init(configuration: AgentConfiguration, context: ZMQContext, shared: AgentShared) {
        self.configuration = configuration
        self.settings = configuration.liveness
        self.context = context
        self.shared = shared
    }

    func setUp(_ loop: IOLoop) throws {
        let dealer = try makeBrokerDealer(context: context, kind: "a.\(configuration.name)", keys: configuration.keys)
        try dealer.connect(configuration.broker)
        self.dealer = dealer
        self.loop = loop
        loop.addSocket(dealer) { [unowned self] in self.handleBroker() }
        expiry = ContinuousClock.now.advanced(by: settings.expiry)
        sayHello()
        scheduleTick(loop)
    }

    func handle(_ command: AgentCommand, _ loop: IOLoop) {}

    func afterWakeUp(_ loop: IOLoop) {}

    func tearDown(_ loop: IOLoop) {
        for worker in workers.values {
            WorkerProcess.killGroup(worker.pid)
            _ = cexecnet_pidfd_send_signal(worker.pidfd, SIGKILL)
        }
        for worker in workers.values {
            var pfd = pollfd(fd: worker.pidfd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 1000)
            _ = WorkerProcess.reap(pidfd: worker.pidfd)
            close(worker.pidfd)
            for fd in worker.outputs { close(fd) }
        }
        workers = [:]
        dealer?.close()
    }

    // MARK: - Broker

    private func send(_ type: BrokerMessageType, _ payload: [UInt8] = []) {
        lastSent = .now
        _ = try? dealer?.send(WireMessage(channelID: 0, type: .broker(type), payload: payload).frames, dontWait: true)
    }

    private func sayHello() {
        var hello = ControlPayload()
        hello["protocol"] = .int(wireProtocolVersion)
        hello["name"] = .string(configuration.name)
        hello["slots"] = .int(Int64(configuration.slots))
        hello["hostname"] = .string(hostName())
        hello["pid"] = .int(Int64(getpid()))
        lastHello = .now
        send(.agentHello, hello.encoded)
    }

    private func handleBroker() {
        guard let dealer else { return }
        for _ in 0..<512 {
            guard let frames = try? dealer.receive(dontWait: true) else { return }
            expiry = ContinuousClock.now.advanced(by: settings.expiry)
            guard let message = try? WireMessage.parse(frames) else {
                logger.warning("dropped a malformed message from the broker")
                continue
            }
            switch message.type {
            case .heartbeat:
                break
            case .welcome:
                let welcome = ControlPayload(decoding: message.payload)
                if let milliseconds = welcome?.int("heartbeat_ms"), milliseconds > 0 {
                    settings = LivenessSettings(interval: .milliseconds(milliseconds), liveness: Int(welcome?.int("liveness") ?? 3))
                }
                expiry = ContinuousClock.now.advanced(by: settings.expiry)
                if !registered { logger.info("registered with broker \(configuration.broker) as \(configuration.name)") }
                registered = true
                shared.registered.store(true, ordering: .releasing)
            case .unknownPeer:
                registered = false
                shared.registered.store(false, ordering: .releasing)
                sayHello()
            case .spawn:
                spawn(message.payload)
            case .spawnFailed:
                // The broker refused this agent's registration (its key is not an agent key, or
                // its name belongs to another key).
                let reason = ControlPayload(decoding: message.payload)?.string("reason") ?? "no reason given"
                logger.error("\(reason)")
            case .kill:
                guard let order = ControlPayload(decoding: message.payload), let address = order.bytes("address"),
                    let worker = workers[address]
                else { break }
                _ = cexecnet_pidfd_send_signal(worker.pidfd, Int32(truncatingIfNeeded: order.int("signal") ?? Int64(SIGKILL)))
            default:
                logger.warning("dropped \(message.type) from the broker")
            }
        }
    }

    private func scheduleTick(_ loop: IOLoop) {
        let period = min(settings.interval / 2, .milliseconds(250))
        loop.schedule(at: .now.advanced(by: period)) { [unowned self, unowned loop] in
            self.tick()
            self.scheduleTick(loop)
        }
    }

    /// Heartbeat when idle; a silent broker means registering again (Paranoid Pirate's reconnect).
    private func tick() {
        let now = ContinuousClock.now
        if now >= expiry {
            if registered { logger.warning("broker \(configuration.broker) stopped answering heartbeats; registering again") }
            registered = false
            shared.registered.store(false, ordering: .releasing)
            expiry = now.advanced(by: settings.expiry)
            sayHello()
        } else if !registered && now >= lastHello.advanced(by: settings.interval) {
            sayHello()
        } else if now >= lastSent.advanced(by: settings.interval) {
            send(.heartbeat)
        }
    }

    // MARK: - Workers

    private func spawn(_ payload: [UInt8]) {
        guard let request = ControlPayload(decoding: payload), let address = request.bytes("address") else {
            logger.warning("dropped a malformed SPAWN")
            return
        }
        func fail(_ reason: String) {
            logger.warning("cannot start a worker: \(reason)")
            var report = ControlPayload()
            report["address"] = .bytes(address)
            report["reason"] = .string("host \(configuration.name): \(reason)")
            send(.spawnFailed, report.encoded)
        }
        guard workers.count < configuration.slots else { return fail("no free slot") }
        let requested = request.string("worker") ?? configuration.allowedWorkers[0]
        guard let executable = resolvedPath(requested), configuration.allowedWorkers.contains(executable) else {
            return fail("worker \(requested) is not on this agent's allow-list")
        }
        let gatewayID = request.string("gateway") ?? "gw"
        let environment: [String]
        switch workerEnvironment(request, address: address, gatewayID: gatewayID) {
        case .success(let built): environment = built
        case .failure(let refusal): return fail(refusal.description)
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
        let spawned: SpawnedWorker
        do {
            spawned = try WorkerProcess.spawn(executable: executable, arguments: [], environment: environment,
                                              newProcessGroup: true, parentDeathSignal: SIGKILL, credential: credential,
                                              user: user.map { (uid: $0.uid, gid: $0.gid) })
        } catch {
            return fail("\(error)")
        }
        workers[address] = RunningWorker(address: address, gatewayID: gatewayID, pid: spawned.pid, pidfd: spawned.pidfd,
                                         outputs: [spawned.stdout, spawned.stderr])
        shared.workerCount.store(workers.count, ordering: .releasing)
        loop?.addFileDescriptor(spawned.pidfd) { [unowned self] in self.workerExited(address) }
        for fd in [spawned.stdout, spawned.stderr] {
            loop?.addFileDescriptor(fd) { [unowned self] in self.forwardOutput(fd, address) }
        }
        var report = ControlPayload()
        report["address"] = .bytes(address)
        report["pid"] = .int(Int64(spawned.pid))
        report["host"] = .string(configuration.name)
        send(.spawned, report.encoded)
    }

    /// The environment of the worker a SPAWN asks for: the agent's own (minus `EXECNET_*`), the
    /// client's variables if the rule allows each (``WorkerEnvironment``), then the agent's settings.
    private func workerEnvironment(_ request: ControlPayload, address: [UInt8], gatewayID: String)
        -> Result<[String], WorkerEnvironment.Refusal> {
        var client: [(name: String, value: String)] = []
        switch request["env"] {
        case nil:
            break
        case .dict(let extra)?:
            for (key, value) in extra {
                guard case .string(let name) = key, case .string(let text) = value else {
                    return .failure(.init(name: "\(key)", reason: "names and values are strings"))
                }
                client.append((name, text))
            }
        case let other?:
            return .failure(.init(name: "\(other)", reason: "env is a dict of strings"))
        }
        var own = [
            "EXECNET_WORKER_MODE=1",
            "EXECNET_ENDPOINT=\(configuration.broker)",
            "EXECNET_ROUTING_ID=\(String(decoding: address, as: UTF8.self))",
            "EXECNET_GATEWAY_ID=\(gatewayID)",
            "EXECNET_PARENT_PID=\(getpid())",
            "EXECNET_HEARTBEAT_MS=\(settings.interval.clampedMilliseconds)",
            "EXECNET_LIVENESS=\(settings.liveness)",
            // The stock worker's exec task runs any command: only with --allow-exec.
            "EXECNET_EXEC_DISABLED=\(configuration.allowExec ? 0 : 1)",
        ]
        if let chdir = request.string("chdir") { own.append("EXECNET_CHDIR=\(chdir)") }
        if let nice = request.int("nice") { own.append("EXECNET_NICE=\(nice)") }
        // With CURVE the worker authenticates with the credential the broker minted for this SPAWN
        // (valid for this worker's address only), read once from an inherited pipe; the agent's
        // own secret never leaves the agent.
        if let keys = configuration.keys {
            own.append("EXECNET_CURVE_SERVER_KEY=\(keys.serverKey)")
            own.append("EXECNET_CREDENTIAL_FD=\(WorkerProcess.credentialFD)")
        }
        return Result { () throws(WorkerEnvironment.Refusal) in
            try WorkerEnvironment.build(inherited: WorkerProcess.currentEnvironment(), client: client, own: own)
        }
    }

    private func workerExited(_ address: [UInt8]) {
        guard let worker = workers[address], let exit = WorkerProcess.reap(pidfd: worker.pidfd, killingGroup: worker.pid)
        else { return }
        for fd in worker.outputs { forwardOutput(fd, address) }
        loop?.removeFileDescriptor(worker.pidfd)
        close(worker.pidfd)
        workers[address] = nil
        shared.workerCount.store(workers.count, ordering: .releasing)
        logger.debug("worker of \(worker.gatewayID) (pid \(worker.pid)) \(exit)")
        var report = ControlPayload()
        report["address"] = .bytes(address)
        report.setWorkerExit(exit)
        send(.workerExited, report.encoded)
    }

    /// Copies a worker's output to the agent's stderr, prefixed with its gateway id.
    private func forwardOutput(_ fd: Int32, _ address: [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                let gatewayID = workers[address]?.gatewayID ?? "gw"
                var text = Array("[\(gatewayID)] ".utf8)
                text += buffer[0..<count]
                _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            loop?.removeFileDescriptor(fd)
            close(fd)
            if var worker = workers[address] {
                worker.outputs.removeAll { $0 == fd }
                workers[address] = worker
            }
            return
        }
    }
}

/// `path` with symlinks, `.` and `..` resolved (realpath(3)), or `nil` if it does not exist.
func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
