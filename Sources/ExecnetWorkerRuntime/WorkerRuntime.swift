// The worker side: a DEALER connected to the client's hub on the worker's I/O thread, the hello,
// task start-up on EXEC, status replies, and the exit handshake (TERMINATE, BYE, FAREWELL).

import ExecnetCore
import ExecnetValue
import Logging
import OrderedCollections
import Synchronization
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Commands to the worker's I/O thread.
enum WorkerCommand: Sendable {
    /// Send a message to the client.
    case send(WireMessage)
}

/// The transport of a worker's connection: its DEALER.
struct WorkerTransport: FrameTransport {
    let io: IOThread<WorkerConnection>

    func submit(_ message: WireMessage) -> Bool {
        io.submit(.send(message))
    }

    var isOnIOThread: Bool { io.isCurrent }
    var timers: TimerQueue? { io.timers }
}

/// Settings a worker reads from its environment.
struct WorkerSettings: Sendable {
    let endpoint: String
    let routingID: [UInt8]
    let gatewayID: String
    let protocolVersion: Int64
    /// Heartbeats with a broker (workers started by a host agent); `nil` for popen workers, whose
    /// client watches them through a pidfd.
    let liveness: LivenessSettings?
    /// CURVE keys towards the broker, from the agent (never the command line).
    let curve: CurveClientKeys?
    /// Whether the worker runs at the end of an ssh session: its stdin is the session's channel, and
    /// its end of file means the client or the connection is gone.
    var sshSession = false

    /// Why the environment does not describe a worker to run.
    enum Problem: Error, Equatable {
        /// `EXECNET_ENDPOINT` or `EXECNET_ROUTING_ID` is missing: not started by a gateway.
        case notStartedByAGateway
        /// A variable is present with a value the worker cannot use (the message names it).
        case invalid(String)
    }

    static func fromEnvironment() throws(Problem) -> WorkerSettings {
        try fromEnvironment { name in getenv(name).map { String(cString: $0) } }
    }

    /// The settings from `env`, checked: heartbeat settings a worker could not live by (a zero,
    /// negative or unreadable interval or liveness) are refused, never guessed.
    static func fromEnvironment(_ env: (String) -> String?) throws(Problem) -> WorkerSettings {
        guard let endpoint = env("EXECNET_ENDPOINT"), let routing = env("EXECNET_ROUTING_ID") else {
            throw .notStartedByAGateway
        }
        // For tests of version checks only.
        let version = env("EXECNET_TEST_PROTOCOL_VERSION").flatMap { Int64($0) } ?? wireProtocolVersion
        var liveness: LivenessSettings?
        if let text = env("EXECNET_HEARTBEAT_MS") {
            guard let milliseconds = Int64(text), milliseconds > 0, milliseconds <= Int64(Int32.max) else {
                throw .invalid("EXECNET_HEARTBEAT_MS must be a positive number of milliseconds, not '\(text)'")
            }
            var count = 3
            if let text = env("EXECNET_LIVENESS") {
                guard let value = Int(text), value >= 1, value <= 1_000 else {
                    throw .invalid("EXECNET_LIVENESS must be a count from 1 to 1000, not '\(text)'")
                }
                count = value
            }
            liveness = LivenessSettings(interval: .milliseconds(milliseconds), liveness: count)
        }
        var curve: CurveClientKeys?
        if let server = env("EXECNET_CURVE_SERVER_KEY"), let fd = env("EXECNET_CREDENTIAL_FD").flatMap({ Int32($0) }),
            let pair = try? CurveKeyPair(secretKey: readCredential(fd)) {
            curve = CurveClientKeys(serverKey: server, keyPair: pair)
        }
        var settings = WorkerSettings(endpoint: endpoint, routingID: Array(routing.utf8),
                                      gatewayID: env("EXECNET_GATEWAY_ID") ?? "gw", protocolVersion: version,
                                      liveness: liveness, curve: curve)
        settings.sshSession = env("EXECNET_SSH_SESSION") == "1"
        return settings
    }
}

/// Reads the credential a host agent left on an inherited pipe, once, and closes it: the
/// broker minted it for this worker's address alone (see docs/SECURITY.md).
private func readCredential(_ fd: Int32) -> String {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 256)
    while bytes.count < 4096 {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    close(fd)
    return String(decoding: bytes, as: UTF8.self)
}

/// The worker's I/O-thread role.
final class WorkerConnection: IOThreadRole {
    typealias Command = WorkerCommand

    let settings: WorkerSettings
    let context: ZMQContext
    let logger: Logger
    /// Filled by the runtime once it exists; read on this thread.
    let runtimeSlot: WorkerRuntimeSlot
    private var cachedRuntime: WorkerRuntime?
    private var dealer: ZMQSocket?
    /// Everything to the client (or broker) goes through it, in order.
    private var outbox: Outbox?
    private var exiting = false
    /// With a broker: heartbeats and the broker's liveness (the session does not register: the
    /// broker knows this worker through its agent's SPAWN). `nil` for a popen worker.
    private var session: BrokerSession?
    /// When this worker last sent anything.
    private var lastSent: ContinuousClock.Instant {
        get { session?.lastSent ?? .now }
        set { session?.sent(now: newValue) }
    }
    /// Where dropped input from the client is logged, at most once per kind and interval.
    private var rogue: RateLimitedLogger?

    init(settings: WorkerSettings, context: ZMQContext, logger: Logger, runtimeSlot: WorkerRuntimeSlot) {
        self.runtimeSlot = runtimeSlot
        self.settings = settings
        self.context = context
        self.logger = logger
    }

    func setUp(_ loop: IOLoop) throws {
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setRoutingID(settings.routingID)
        try dealer.setLinger(milliseconds: 1000)
        try dealer.setSendHighWaterMark(0)
        try dealer.setReceiveHighWaterMark(0)
        try settings.curve?.apply(to: dealer)
        try dealer.connect(settings.endpoint)
        self.dealer = dealer
        rogue = RateLimitedLogger(logger: logger, timers: loop.timers)
        loop.addSocket(dealer) { [unowned self, unowned loop] in self.handleDealer(loop) }
        outbox = Outbox(socket: dealer, routed: false, logger: logger, loop: loop)
        if let liveness = settings.liveness {
            session = BrokerSession(settings: liveness, registers: false, now: .now)
            scheduleHeartbeat(loop)
        }
        if settings.sshSession { watchSessionInput(loop) }
    }

    /// Over ssh: the session's channel is this worker's stdin, which nobody writes to. Its end of
    /// file (or an error) means the ssh client, its connection or the client program is gone: the
    /// worker exits at once, with what it started (no orphans on the remote host).
    private func watchSessionInput(_ loop: IOLoop) {
        _ = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK)
        loop.addFileDescriptor(0) { [unowned self, unowned loop] in
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if count > 0 { continue }
                if count < 0 && errno == EINTR { continue }
                if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
                break
            }
            // Nobody is left to read a log line (stderr went with the session). The process group
            // is the session's (sshd made it for the remote command: its shell, this worker and what
            // the worker started): it all ends, this worker included.
            loop.removeFileDescriptor(0)
            Glibc.kill(0, SIGKILL)
            self.finishExit(code: 1)
        }
    }

    /// With a broker: heartbeat when idle, and exit when the broker has been silent too long (its
    /// session with this worker is gone either way).
    private func scheduleHeartbeat(_ loop: IOLoop) {
        guard let period = session?.tickPeriod else { return }
        loop.schedule(at: .now.advanced(by: period)) { [unowned self, unowned loop] in
            switch self.session?.tick(now: .now) {
            case .brokerLost?:
                self.logger.error("the broker stopped answering heartbeats; exiting")
                self.finishExit(code: 1)
            case .sendHeartbeat?, .resumedAfterPause?:
                // After a pause of its own (stopped, or its I/O thread held by a task) the worker
                // speaks first; the broker's silence meanwhile was its own.
                self.send(WireMessage(channelID: 0, type: .heartbeat, payload: []), loop)
            case .none?, .sendHello?, nil:
                break
            }
            self.scheduleHeartbeat(loop)
        }
    }

    func handle(_ command: WorkerCommand, _ loop: IOLoop) {
        switch command {
        case .send(let message): send(message, loop)
        }
    }

    func afterWakeUp(_ loop: IOLoop) {}

    func tearDown(_ loop: IOLoop) {
        outbox?.close()
        dealer?.close()
    }

    /// Sends through the outbox (a full pipe queues; a failure or the cap is logged there).
    func send(_ message: WireMessage, _ loop: IOLoop) {
        guard let outbox else { return }
        lastSent = .now
        outbox.send(message)
    }

    private func handleDealer(_ loop: IOLoop) {
        if cachedRuntime == nil { cachedRuntime = runtimeSlot.runtime.withLock { $0 } }
        guard let dealer, let runtime = cachedRuntime else { return }
        var arrived = 0
        defer {
            // Any traffic from the broker is a sign of life (one clock read per batch).
            if arrived > 0 { session?.heard(now: .now) }
        }
        for _ in 0..<512 {
            let received: ReceivedWireMessage
            do {
                guard let next = try dealer.receiveWire(routed: false) else { return }
                received = next
            } catch {
                logger.error("DEALER receive failed: \(error)")
                return
            }
            arrived += 1
            let message: WireMessage
            do {
                message = try received.get()
            } catch {
                rogue?.warning("dropped a malformed message from the client", "\(error)")
                continue
            }
            switch message.type {
            case .heartbeat:
                continue
            case .unknownPeer:
                logger.error("the broker does not know this worker (it restarted?); exiting")
                finishExit(code: 1)
            case .exec:
                runtime.startTask(message)
            case .data, .close, .closeError, .credit:
                runtime.connection.dispatch(message)
            case .status:
                runtime.replyStatus(channelID: message.channelID)
            case .terminate:
                beginExit(loop)
            case .farewell:
                finishExit()
            default:
                rogue?.warning("dropped a message that is not a client message", "\(message.type)")
            }
        }
    }

    /// TERMINATE: say bye (after everything already queued), and exit on the farewell, or after a
    /// bounded wait if the client is gone.
    private func beginExit(_ loop: IOLoop) {
        guard !exiting else { return }
        exiting = true
        send(WireMessage(channelID: 0, type: .bye, payload: []), loop)
        loop.schedule(at: .now.advanced(by: .seconds(2))) { [unowned self] in
            self.logger.debug("no farewell from the client; exiting")
            self.finishExit()
        }
    }

    private func finishExit(code: Int32 = 0) -> Never {
        fflush(nil)
        _exit(code)
    }
}

/// Where the worker's I/O thread finds the runtime, which is made after the thread starts.
final class WorkerRuntimeSlot: Sendable {
    let runtime = Mutex<WorkerRuntime?>(nil)
}

/// The worker process's runtime: its connection to the client and its running tasks.
final class WorkerRuntime: Sendable {
    let io: IOThread<WorkerConnection>
    let connection: PeerConnection
    let tasks: TaskRegistry
    let settings: WorkerSettings
    let executing = Atomic<Int>(0)

    init(tasks: TaskRegistry, settings: WorkerSettings, logger: Logger, runtimeSlot: WorkerRuntimeSlot) throws {
        let context = try ZMQContext()
        let io = try IOThread(name: "execnet-io") {
            WorkerConnection(settings: settings, context: context, logger: logger, runtimeSlot: runtimeSlot)
        }
        self.io = io
        // Every worker offers rsync (a task of the user's under that name wins).
        var tasks = tasks
        tasks.registerRSync()
        self.tasks = tasks
        self.settings = settings
        self.connection = PeerConnection(
            gatewayID: settings.gatewayID, side: .worker, transport: WorkerTransport(io: io), logger: logger)
        // A client that breaks the unnamed-channel cap is lying: nothing it sends can be trusted; exit.
        connection.onProtocolViolation { _ in
            fflush(nil)
            _exit(1)
        }
    }

    /// Sends the hello that tells the client who this worker is.
    func sayHello() {
        var hello = ControlPayload()
        hello["protocol"] = .int(settings.protocolVersion)
        for (key, value) in ProcessIdentity.current().fields { hello[key] = value }
        hello["tasks"] = .list(tasks.names.map { .string($0) })
        connection.send(WireMessage(channelID: 0, type: .hello, payload: hello.encoded))
    }

    /// EXEC: decode `(name, args, kwargs)` and start the task on its channel (I/O thread).
    func startTask(_ message: WireMessage) {
        guard isFreshClientID(message) else { return }
        let decoded = try? connection.decode(message.payload)
        guard case .tuple(let parts)? = decoded, parts.count == 3, case .string(let name) = parts[0],
            case .list(let arguments) = parts[1], case .dict(let rawKeywords) = parts[2]
        else {
            let channel = connection.channel(forID: message.channelID, isTaskChannel: true)
            channel.closeLocally(error: "malformed EXEC payload")
            return
        }
        let channel = connection.channel(forID: message.channelID, taskName: name, isTaskChannel: true)
        guard let task = tasks[name] else {
            channel.closeLocally(error: "unknown task '\(name)'; this worker has: \(tasks.names.joined(separator: ", "))")
            return
        }
        var keywords = OrderedDictionary<String, Value>()
        for (key, value) in rawKeywords {
            if case .string(let key) = key { keywords[key] = value }
        }
        let context = TaskContext(channel: channel, arguments: arguments, keywordArguments: keywords,
                                  gatewayID: settings.gatewayID)
        executing.add(1, ordering: .relaxed)
        switch task {
        case .async(let body):
            Task.detached { [self] in
                do {
                    try await body(context)
                    finish(channel, error: nil)
                } catch {
                    finish(channel, error: error)
                }
            }
        case .ioThread(let body):
            Task.detached(executorPreference: io.executor) { [self] in
                do {
                    try await body(context)
                    finish(channel, error: nil)
                } catch {
                    finish(channel, error: error)
                }
            }
        case .thread(let body):
            OSThread(name: "execnet-task") { [self] in
                do {
                    try body(context)
                    finish(channel, error: nil)
                } catch {
                    finish(channel, error: error)
                }
            }.detach()
        }
    }

    private func finish(_ channel: Channel, error: (any Error)?) {
        executing.subtract(1, ordering: .relaxed)
        if let error {
            channel.closeLocally(error: "\(type(of: error)): \(error)")
        } else {
            channel.closeLocally(error: nil)
        }
    }

    /// STATUS: reply on the given channel from the I/O thread, then close it.
    func replyStatus(channelID: Int32) {
        guard isFreshClientID(WireMessage(channelID: channelID, type: .status, payload: [])) else { return }
        let channel = connection.channel(forID: channelID, resolving: true)
        let status: Value = .dict([
            "numchannels": .int(Int64(connection.openChannelCount - 1)),
            "numexecuting": .int(Int64(executing.load(ordering: .relaxed))),
            "execmodel": "swift-concurrency",
        ])
        if let payload = try? connection.encode(status) {
            connection.send(WireMessage(channelID: channelID, type: .data, payload: payload))
        }
        // Forgotten when the client's own close arrives, as every channel.
        channel.closeLocally(error: nil)
    }

    /// Whether an EXEC or STATUS opens a new channel in the client's id space; anything else is
    /// logged and dropped (it would take over an open channel or an id this side allocates).
    private func isFreshClientID(_ message: WireMessage) -> Bool {
        let id = message.channelID
        guard id > 0, !connection.isOwnID(id), connection.existingChannel(id) == nil else {
            connection.logger.warning("dropped \(message.type) on channel \(id): not a new client channel id")
            return false
        }
        return true
    }
}
