// execnet-agent: a host agent. Registers this host with a broker and starts one worker process per
// gateway that clients ask for, running only worker executables on its allow-list (and the built-in
// exec task only with --allow-exec). SIGTERM/SIGINT kill its workers and leave. A separate
// executable, so the popen worker stays lean.

import ArgumentParser
import ExecnetCore
import ExecnetHostAgent
import ExecnetObservability
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

@main
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "execnet-agent",
        abstract: "Register this host with an execnet broker and run workers for its clients.",
        version: execnetVersionText)

    @Option(name: .long, help: "The broker's endpoint. Default: $EXECNET_BROKER.")
    var connect: String?

    @Option(name: .long, help: "The name clients ask for with host=NAME. Default: $EXECNET_AGENT_NAME or the hostname.")
    var name: String?

    @Option(name: .long, help: "How many workers may run at once. Default: $EXECNET_AGENT_SLOTS or the number of CPUs.")
    var slots: Int?

    @Option(name: .long, help: "A worker executable this agent may run (repeatable). Default: execnet-worker beside this program.")
    var allow: [String] = []

    @Flag(name: .long, help: "Let clients run the built-in exec task (any command, as this agent's user) in its workers. Off by default.")
    var allowExec = false

    @Option(name: .long, help: "The broker's CURVE public key file. Default: $EXECNET_SERVER_KEY_FILE.")
    var serverKey: String?

    @Option(name: .long, help: "This agent's CURVE secret key file (an 'agent' key at the broker; its workers never see it). Default: $EXECNET_SECRET_KEY_FILE.")
    var secretKey: String?

    @Option(name: .long, help: ArgumentHelp(
        "Run the workers of one client key as a user: PUBLIC_KEY_FILE=USER (repeatable; needs root and a CURVE broker).",
        valueName: "key-file=user"))
    var clientUser: [String] = []

    @Option(name: .long, help: "Run the workers of clients without --client-user as this user (needs root). Default: the agent's user.")
    var defaultUser: String?

    @Option(name: .long, help: "Heartbeat interval in seconds until the broker says its own.")
    var heartbeatInterval: Double = 1.0

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(name: .long, help: "Log line format: text, or json (one object per line, for log shippers). Default: $EXECNET_LOG_FORMAT or text.")
    var logFormat: String?

    @Option(name: .long, help: ArgumentHelp(
        "Serve /metrics (Prometheus), /healthz and /readyz (ready once registered with the broker) over HTTP on HOST:PORT (a bare PORT is on 127.0.0.1). Off unless set. Default: $EXECNET_AGENT_HTTP_ADDRESS.",
        valueName: "host:port"))
    var httpAddress: String?

    func run() async throws {
        let format = try resolveLogFormat(logFormat)
        format.bootstrap()
        func environment(_ name: String) -> String? {
            guard let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty else { return nil }
            return value
        }
        var logger = Logger(label: "execnet.agent")
        if let logLevel, let level = Logger.Level(rawValue: logLevel) {
            logger.logLevel = level
        } else {
            logger.logLevel = environment("EXECNET_DEBUG").map { $0 != "0" } == true ? .debug : .info
        }
        let http = try resolveHTTPAddress(httpAddress, environmentName: "EXECNET_AGENT_HTTP_ADDRESS", logger: logger)
        // Before the agent starts: its metric objects keep the factory in force when they are made.
        let registry = http.map { _ in Observability.bootstrapPrometheus() }
        guard let broker = connect ?? environment("EXECNET_BROKER") else {
            throw ValidationError("--connect (or $EXECNET_BROKER) names the broker, e.g. tcp://broker:5555")
        }
        var hostBuffer = [CChar](repeating: 0, count: 256)
        gethostname(&hostBuffer, hostBuffer.count - 1)
        let hostname = String(decoding: hostBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let agentName = name ?? environment("EXECNET_AGENT_NAME") ?? hostname
        let slotCount = slots ?? environment("EXECNET_AGENT_SLOTS").flatMap { Int($0) } ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var allowed = allow.map(absolutePath)
        if allowed.isEmpty {
            allowed = [directoryOfExecutable() + "/execnet-worker"]
        }
        var keys: CurveClientKeys?
        if let serverFile = serverKey ?? environment("EXECNET_SERVER_KEY_FILE") {
            guard let secretFile = secretKey ?? environment("EXECNET_SECRET_KEY_FILE") else {
                throw ValidationError("--server-key needs --secret-key")
            }
            keys = CurveClientKeys(serverKey: try loadCurvePublicKey(serverFile), keyPair: try CurveKeyPair.load(secretKeyFile: secretFile))
        }
        guard heartbeatInterval > 0 else { throw ValidationError("--heartbeat-interval must be positive") }
        var clientUsers: [String: WorkerUser] = [:]
        for entry in clientUser {
            // Z85 keys may hold '=', user names do not: the user follows the last '='.
            guard let split = entry.lastIndex(of: "="), split != entry.startIndex else {
                throw ValidationError("--client-user takes KEY_FILE=USER, not '\(entry)'")
            }
            clientUsers[try loadCurvePublicKey(String(entry[..<split]))] = try WorkerUser.named(String(entry[entry.index(after: split)...]))
        }
        var configuration = AgentConfiguration(broker: broker, name: agentName, slots: slotCount, allowedWorkers: allowed,
                                               keys: keys, allowExec: allowExec,
                                               liveness: LivenessSettings(interval: .milliseconds(max(1, Int64((heartbeatInterval * 1000).rounded())))),
                                               logger: logger)
        configuration.clientUsers = clientUsers
        if format == .json {
            // Worker output lines become log entries with the gateway id in their metadata, so the
            // log stays one JSON object per line.
            configuration.outputHandler = { [logger, agentName] gatewayID, stream, line in
                logger.info("\(String(decoding: line, as: UTF8.self))", metadata: [
                    "gateway": "\(gatewayID)", "host": "\(agentName)", "stream": stream == .stdout ? "stdout" : "stderr",
                ])
            }
        }
        configuration.defaultUser = try defaultUser.map(WorkerUser.named)
        let running = RunningAgent()
        let service = HostAgentService(configuration: configuration) { [name = configuration.name, slots = configuration.slots,
                                                                       broker = configuration.broker] event in
            switch event {
            case .running(let agent):
                running.set(agent)
                print("execnet-agent: \(name) with \(slots) slots, broker \(broker)")
                fflush(nil)
            case .stopping:
                running.set(nil)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service)]
        if let http, let registry {
            services.append(.init(service: Observability.httpService(
                address: http, registry: registry, ready: { running.isRegistered },
                logger: logger,
                onListening: { [logger] port in logger.info("serving /metrics, /healthz and /readyz", metadata: ["http": "\(http.host):\(port)"]) })))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return cwd + "/" + path
}

func directoryOfExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let path = String(decoding: buffer[0..<max(0, count)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
}

/// The running agent, shared between the agent's service and the HTTP server's `/readyz`.
final class RunningAgent: Sendable {
    private let agent = Mutex<HostAgent?>(nil)

    func set(_ value: HostAgent?) { agent.withLock { $0 = value } }

    /// Whether an agent runs and is registered with its broker.
    var isRegistered: Bool { agent.withLock { $0?.isRegistered ?? false } }
}
