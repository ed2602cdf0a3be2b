// execnet-agent: a host agent. Registers this host with a broker and starts one worker process per
// gateway that clients ask for, running only worker executables on its allow-list (and the built-in
// exec task only with --allow-exec). SIGTERM/SIGINT kill its workers and leave. A separate
// executable, so the popen worker stays lean.

import ArgumentParser
import ExecnetCore
import ExecnetHostAgent
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

@main
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "execnet-agent",
        abstract: "Register this host with an execnet broker and run workers for its clients.")

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

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
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
        configuration.defaultUser = try defaultUser.map(WorkerUser.named)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: AgentService(configuration: configuration))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The agent as a Service: start, wait for graceful shutdown, kill the workers and leave.
struct AgentService: Service {
    let configuration: AgentConfiguration

    func run() async throws {
        let agent = try HostAgent(configuration: configuration)
        print("execnet-agent: \(configuration.name) with \(configuration.slots) slots, broker \(configuration.broker)")
        fflush(nil)
        try? await gracefulShutdown()
        await agent.stop()
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
