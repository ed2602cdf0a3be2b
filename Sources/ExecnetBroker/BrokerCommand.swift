// execnet-broker: the standalone broker. `serve` routes frames between clients, host agents and
// workers (the same routing component as the embedded hub's peers); `keygen` writes a CURVE
// keypair; `status` prints a running broker's table. SIGTERM/SIGINT shut down gracefully.

import ArgumentParser
import ExecnetBrokerServer
import ExecnetCore
import ExecnetObservability
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

@main
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "execnet-broker",
        abstract: "The swift-execnet broker: clients and host agents on many machines meet here.",
        version: execnetVersionText,
        subcommands: [Serve.self, Keygen.self, Status.self],
        defaultSubcommand: Serve.self)
}

/// Reads an environment variable, treating empty as unset.
func environment(_ name: String) -> String? {
    guard let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty else { return nil }
    return value
}

/// Log level from a flag, else EXECNET_DEBUG.
func resolveLogLevel(_ flag: String?) -> Logger.Level {
    if let flag, let level = Logger.Level(rawValue: flag) { return level }
    return environment("EXECNET_DEBUG").map { $0 != "0" } == true ? .debug : .info
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker.")

    @Option(name: .long, help: "An endpoint to bind (repeatable), e.g. tcp://0.0.0.0:5555. Default: $EXECNET_BROKER_BIND or tcp://127.0.0.1:5555.")
    var bind: [String] = []

    @Option(name: .long, help: "The broker's CURVE secret key file (required for non-loopback binds). Default: $EXECNET_SECRET_KEY_FILE.")
    var secretKey: String?

    @Option(name: .long, help: ArgumentHelp(
        "File of allowed public keys with their roles, one per line: 'client KEY', 'agent KEY', 'status KEY' (a line with no role is a client). Reloaded on SIGHUP. Default: $EXECNET_AUTHORIZED_KEYS_FILE."))
    var authorizedKeys: String?

    @Option(name: .long, help: "The most gateways one client key may have at once (0: no limit).")
    var maxGatewaysPerClient: Int = defaultMaxGatewaysPerClient

    @Option(name: .long, help: "Heartbeat interval in seconds.")
    var heartbeatInterval: Double = 1.0

    @Option(name: .long, help: "Missed heartbeats before a peer is dead.")
    var liveness: Int = 3

    @Option(name: .long, help: "Largest message frame accepted, in bytes.")
    var maxMessageSize: Int = defaultMaxMessageSize

    @Option(name: .long, help: "Memory cap in MiB: bytes in flight on channels plus bytes queued for slow peers, past which new gateways are refused.")
    var maxInFlightMib: Int = BrokerLimits().maxInFlightBytes >> 20

    @Option(name: .long, help: "Open channels per gateway; a peer opening more is cut off.")
    var maxChannelsPerGateway: Int = BrokerLimits().maxChannelsPerGateway

    @Option(name: .long, help: "How long a graceful shutdown waits for workers, in seconds.")
    var shutdownGrace: Double = 5

    @Option(name: .long, help: "Seconds between two load reports of an agent (0: agents send none).")
    var loadReportInterval: Double = 5

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(name: .long, help: "Log line format: text, or json (one object per line, for log shippers). Default: $EXECNET_LOG_FORMAT or text.")
    var logFormat: String?

    @Option(name: .long, help: ArgumentHelp(
        "Serve /metrics (Prometheus), /healthz and /readyz over HTTP on HOST:PORT (a bare PORT is on 127.0.0.1). Off unless set. Default: $EXECNET_BROKER_HTTP_ADDRESS.",
        valueName: "host:port"))
    var httpAddress: String?

    @Option(name: .long, help: ArgumentHelp(
        "A file holding the bearer token the HTTP port requires (Authorization: Bearer, or ?token= for the dashboard); the token grants what a status key grants. Required for a non-loopback --http-address. Default: $EXECNET_BROKER_HTTP_TOKEN_FILE.",
        valueName: "path"))
    var httpTokenFile: String?

    func run() async throws {
        try resolveLogFormat(logFormat).bootstrap()
        var logger = Logger(label: "execnet.broker")
        logger.logLevel = resolveLogLevel(logLevel)
        let http = try resolveHTTPAddress(httpAddress, environmentName: "EXECNET_BROKER_HTTP_ADDRESS", logger: nil)
        let access = try http.map { try resolveHTTPAccess(httpTokenFile, environmentName: "EXECNET_BROKER_HTTP_TOKEN_FILE", for: $0) }
        // Before the broker starts: its metric objects keep the factory in force when they are made.
        let registry = http.map { _ in Observability.bootstrapPrometheus() }
        var binds = bind
        if binds.isEmpty {
            binds = environment("EXECNET_BROKER_BIND")?.split(separator: ",").map(String.init) ?? ["tcp://127.0.0.1:5555"]
        }
        var security: BrokerSecurity?
        let secretFile = secretKey ?? environment("EXECNET_SECRET_KEY_FILE")
        let authorizedFile = authorizedKeys ?? environment("EXECNET_AUTHORIZED_KEYS_FILE")
        if let secretFile {
            guard let authorizedFile else {
                throw ValidationError("--secret-key needs --authorized-keys (who may connect)")
            }
            security = BrokerSecurity(keyPair: try CurveKeyPair.load(secretKeyFile: secretFile),
                                      authorizedKeys: try AuthorizedKeys.load(authorizedFile))
        }
        guard heartbeatInterval > 0, liveness >= 1 else { throw ValidationError("heartbeat interval and liveness must be positive") }
        guard maxInFlightMib > 0, maxChannelsPerGateway > 0 else { throw ValidationError("limits must be positive") }
        var configuration = BrokerConfiguration(
            binds: binds, liveness: LivenessSettings(interval: .seconds(heartbeatInterval), liveness: liveness),
            maxMessageSize: maxMessageSize, security: security, shutdownGracePeriod: .seconds(shutdownGrace),
            maxGatewaysPerClient: maxGatewaysPerClient, logger: logger)
        configuration.limits.maxInFlightBytes = maxInFlightMib << 20
        configuration.limits.maxChannelsPerGateway = maxChannelsPerGateway
        configuration.loadReportInterval = loadReportInterval > 0 ? .seconds(loadReportInterval) : nil
        do {
            try configuration.validate()
        } catch let error as ExecnetError {
            throw ValidationError(error.message)
        }
        let ready = ReadinessFlag()
        let running = RunningBroker()
        let service = BrokerService(configuration: configuration, authorizedKeysFile: security == nil ? nil : authorizedFile) { event in
            switch event {
            case .serving(let broker):
                running.set(broker)
                // The ready line: tests and scripts wait for it and read the resolved endpoints.
                print("execnet-broker: listening on \(broker.endpoints.joined(separator: " "))")
                fflush(nil)
                ready.set(true)
            case .shuttingDown:
                ready.set(false)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service)]
        if let http, let registry, let access {
            // The dashboard reads the full status: what a status key reads (the token is its HTTP form).
            let feed = DashboardFeed<BrokerStatus>(status: { running.get()?.status() }, isNews: { $0.differsInShape(from: $1) })
            services.append(.init(service: try Observability.dashboardService(
                address: http, access: access, registry: registry, ready: { ready.isReady }, feed: feed, logger: logger,
                onListening: { [logger] port in
                    logger.info("serving the dashboard (/), /events, /metrics, /healthz and /readyz\(access.token == nil ? "" : " (token required)")",
                                metadata: ["http": "\(HTTPAddress(host: http.host, port: port))"])
                })))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The broker the service runs, once it serves (the dashboard reads its status).
final class RunningBroker: Sendable {
    private let broker = Mutex<BrokerServer?>(nil)

    func set(_ server: BrokerServer?) { broker.withLock { $0 = server } }

    func get() -> BrokerServer? { broker.withLock { $0 } }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a new CURVE keypair to files.")

    @Option(name: .long, help: "Where the secret key goes (written with mode 0600).")
    var secret: String

    @Option(name: .long, help: "Where the public key goes.")
    var `public`: String

    @Flag(name: .long, help: "Overwrite existing files.")
    var force = false

    func run() throws {
        let pair = try CurveKeyPair.generate()
        try pair.write(secretPath: secret, publicPath: `public`, overwrite: force)
        print(pair.publicKey)
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a running broker's hosts, workers, gateways, channels and message rates.")

    @Option(name: .long, help: "The broker's endpoint. Default: $EXECNET_BROKER or tcp://127.0.0.1:5555.")
    var connect: String?

    @Option(name: .long, help: "The broker's CURVE public key file. Default: $EXECNET_SERVER_KEY_FILE.")
    var serverKey: String?

    @Option(name: .long, help: "This caller's CURVE secret key file. Default: $EXECNET_SECRET_KEY_FILE.")
    var secretKey: String?

    @Flag(name: .long, help: "Print JSON (one object per line).")
    var json = false

    @Flag(name: .long, help: "Print the status again every --interval seconds until interrupted.")
    var watch = false

    @Option(name: .long, help: "Seconds between two prints with --watch.")
    var interval: Double = 2

    @Option(name: .long, help: "With --watch: stop after this many prints (0: never).")
    var count: Int = 0

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout: Double = 5

    func run() throws {
        let endpoint = connect ?? environment("EXECNET_BROKER") ?? "tcp://127.0.0.1:5555"
        var keys: CurveClientKeys?
        if let serverFile = serverKey ?? environment("EXECNET_SERVER_KEY_FILE") {
            guard let secretFile = secretKey ?? environment("EXECNET_SECRET_KEY_FILE") else {
                throw ValidationError("--server-key needs --secret-key")
            }
            keys = CurveClientKeys(serverKey: try loadCurvePublicKey(serverFile), keyPair: try CurveKeyPair.load(secretKeyFile: secretFile))
        }
        guard interval > 0, count >= 0 else { throw ValidationError("--interval must be positive and --count not negative") }
        var printed = 0
        while true {
            let status = try BrokerStatusQuery.fetchStatus(endpoint: endpoint, keys: keys, timeout: .seconds(timeout))
            // A terminal gets the table redrawn in place; JSON lines are appended.
            if watch && !json && isatty(1) != 0 { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print(json ? try statusJSON(status) : statusTable(status))
            fflush(nil)
            printed += 1
            guard watch, count == 0 || printed < count else { return }
            usleep(useconds_t(interval * 1_000_000))
            if !json { print("") }
        }
    }
}
