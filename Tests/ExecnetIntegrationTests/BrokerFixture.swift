// A real execnet-broker and execnet-agent for the tests that run against broker gateways: started
// once per test process on tcp://127.0.0.1 with short liveness timings, and killed at exit.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The kinds of gateway the semantics tests run against.
enum GatewayKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case popen
    case broker

    var testDescription: String { rawValue }
}

/// A started child process whose stdout first line is read.
struct ChildProcess: Sendable {
    let pid: Int32
    let pidfd: Int32
}

/// Starts `executable` and returns it with the first stdout line (within 20 s), waiting on a
/// thread of its own.
func startChild(_ executable: String, _ arguments: [String], environment extra: [String] = []) async throws -> (ChildProcess, String) {
    try await offPool { try startChildBlocking(executable, arguments, environment: extra) }
}

/// Starts `executable` and returns it with the first stdout line (within 20 s).
///
/// - Important: Blocks the calling thread.
func startChildBlocking(_ executable: String, _ arguments: [String], environment extra: [String] = []) throws -> (ChildProcess, String) {
    // An entry of `extra` replaces an inherited one of the same name.
    let names = Set(extra.map { $0.prefix { $0 != "=" } })
    let environment = WorkerProcess.currentEnvironment().filter {
        !$0.hasPrefix("EXECNET_") && !names.contains($0.prefix { $0 != "=" })
    } + extra
    let spawned = try WorkerProcess.spawn(executable: executable, arguments: arguments, environment: environment)
    var line: [UInt8] = []
    var byte: UInt8 = 0
    var pfd = pollfd(fd: spawned.stdout, events: Int16(POLLIN), revents: 0)
    let deadline = ContinuousClock.now.advanced(by: .seconds(20))
    while ContinuousClock.now < deadline {
        if poll(&pfd, 1, 100) <= 0 { continue }
        if read(spawned.stdout, &byte, 1) <= 0 || byte == 10 { break }
        line.append(byte)
    }
    // The child's later output is copied to the test's stderr, so its pipes never fill.
    let name = String(executable.split(separator: "/").last ?? "child")
    for fd in [spawned.stdout, spawned.stderr] {
        OSThread(name: "test-drain") {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, -1)
                let count = read(fd, &buffer, buffer.count)
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { break }
                if count > 0 {
                    let text = Array("[\(name)] ".utf8) + buffer[0..<count]
                    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                }
            }
            close(fd)
        }.detach()
    }
    return (ChildProcess(pid: spawned.pid, pidfd: spawned.pidfd), String(decoding: line, as: UTF8.self))
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`; reaps it.
func stopChild(_ child: ChildProcess, grace: Duration = .seconds(3)) {
    _ = cexecnetSignal(child.pidfd, SIGTERM)
    var pfd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
    if poll(&pfd, 1, grace.clampedMilliseconds) <= 0 { _ = cexecnetSignal(child.pidfd, SIGKILL) }
    var status: Int32 = 0
    waitpid(child.pid, &status, 0)
    close(child.pidfd)
}

/// The shared broker and agent.
final class BrokerFixture: Sendable {
    let endpoint: String
    let broker: ChildProcess
    let agent: ChildProcess

    private static let shared = Mutex<BrokerFixture?>(nil)

    /// The fixture, started on first use.
    static func current() throws -> BrokerFixture {
        try shared.withLock { shared in
            if let fixture = shared { return fixture }
            let fixture = try BrokerFixture()
            shared = fixture
            atexit {
                if let fixture = BrokerFixture.shared.withLock({ $0 }) {
                    stopChild(fixture.agent)
                    stopChild(fixture.broker)
                }
            }
            return fixture
        }
    }

    private init() throws {
        let (broker, endpoint) = try startBrokerBlocking()
        self.broker = broker
        self.endpoint = endpoint
        agent = try startAgentBlocking(endpoint, name: "testhost", slots: 300, ["--allow-exec"])
    }
}

/// Starts an execnet-broker with short liveness timings (0.2 s heartbeats, a 1 s window: short enough
/// for the tests that wait for a death, wider than the 0.6 s that expired live peers on a machine at
/// load 30) on `bind`, waiting on a thread of its own.
func startBroker(bind: String = "tcp://127.0.0.1:*", _ extra: [String] = []) async throws -> (ChildProcess, String) {
    try await offPool { try startBrokerBlocking(bind: bind, extra) }
}

/// Starts an execnet-broker as ``startBroker(bind:_:)`` does, blocking the calling thread.
func startBrokerBlocking(bind: String = "tcp://127.0.0.1:*", _ extra: [String] = []) throws -> (ChildProcess, String) {
    let (broker, ready) = try startChildBlocking("\(buildDirectory())/execnet-broker", [
        "serve", "--bind", bind, "--heartbeat-interval", "0.2", "--liveness", "5", "--log-level", "error",
    ] + extra)
    guard ready.hasPrefix("execnet-broker: listening on "), let endpoint = ready.split(separator: " ").last else {
        stopChild(broker)
        throw ExecnetError(.transport, "the broker did not start: '\(ready)'")
    }
    return (broker, String(endpoint))
}

/// Starts an execnet-agent for the test workers and waits (on a thread of its own) until the
/// broker lists it.
func startAgent(_ endpoint: String, name: String, slots: Int = 8, _ extra: [String] = [],
                statusKeys: CurveClientKeys? = nil) async throws -> ChildProcess {
    try await offPool { try startAgentBlocking(endpoint, name: name, slots: slots, extra, statusKeys: statusKeys) }
}

/// Starts an execnet-agent as ``startAgent(_:name:slots:_:statusKeys:)`` does, blocking the calling thread.
func startAgentBlocking(_ endpoint: String, name: String, slots: Int = 8, _ extra: [String] = [],
                        statusKeys: CurveClientKeys? = nil) throws -> ChildProcess {
    let bin = buildDirectory()
    let (agent, ready) = try startChildBlocking("\(bin)/execnet-agent", [
        "--connect", endpoint, "--name", name, "--slots", "\(slots)",
        "--allow", "\(bin)/ExecnetTestWorker", "--allow", "\(bin)/execnet-worker", "--log-level", "error",
    ] + extra)
    guard ready.hasPrefix("execnet-agent:") else {
        stopChild(agent)
        throw ExecnetError(.transport, "the agent did not start: '\(ready)'")
    }
    let deadline = ContinuousClock.now.advanced(by: .seconds(20))
    while ContinuousClock.now < deadline {
        if brokerLists(host: name, endpoint, keys: statusKeys) { return agent }
        usleep(20_000)  // The poll interval of a bounded wait, on a blocking caller's own thread.
    }
    stopChild(agent)
    throw ExecnetError(.timeout, "agent \(name) never registered with the broker")
}

/// Whether the broker's status lists a host of this name.
func brokerLists(host name: String, _ endpoint: String, keys: CurveClientKeys? = nil) -> Bool {
    guard case .dict(let status)? = try? BrokerStatusQuery.fetch(endpoint: endpoint, keys: keys, timeout: .seconds(2)),
        case .list(let hosts)? = status[.string("hosts")]
    else { return false }
    return hosts.contains { $0.dictValue?[.string("name")] == .string(name) }
}

/// The spec of a gateway running the test worker, of the given kind.
func testWorkerSpec(_ kind: GatewayKind, _ extra: String = "") throws -> String {
    switch kind {
    case .popen:
        return testWorkerSpec(extra)
    case .broker:
        // scripts/multihost-test.sh points the tests at a broker on another (network namespace) host.
        if let external = getenv("EXECNET_TEST_EXTERNAL_BROKER").map({ String(cString: $0) }), !external.isEmpty {
            return external + "//worker=\(buildDirectory())/ExecnetTestWorker" + extra
        }
        return "broker=\(try BrokerFixture.current().endpoint)//worker=\(buildDirectory())/ExecnetTestWorker" + extra
    }
}

/// Runs `body` with a group of `count` test-worker gateways of `kind`; terminates it and checks
/// that no worker pid survives.
func withTestGroup(_ count: Int, kind: GatewayKind, _ body: (Group) async throws -> Void) async throws {
    try await withTestGroup(count, specs: Array(repeating: try testWorkerSpec(kind), count: count), body)
}

/// Asks the broker for its status from a thread of its own (the query blocks).
func fetchBrokerStatus(_ endpoint: String, keys: CurveClientKeys? = nil, timeout: Duration = .seconds(5)) async throws -> Value {
    try await offPool { try BrokerStatusQuery.fetch(endpoint: endpoint, keys: keys, timeout: timeout) }
}
