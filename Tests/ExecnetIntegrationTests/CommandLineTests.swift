// The executables as users run them: each entrypoint's --help, keygen, and status as a table and
// as JSON against a running broker.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs an executable to completion (waiting on a thread of its own) and returns its exit status
/// and stdout+stderr.
/// `environment` is added to this process's own, whose `EXECNET_` variables are left out.
func runToCompletion(_ executable: String, _ arguments: [String],
                     environment: [String] = []) async throws -> (status: Int32, output: String) {
    try await offPool { try runToCompletionBlocking(executable, arguments, environment: environment) }
}

private func runToCompletionBlocking(_ executable: String, _ arguments: [String],
                                     environment: [String]) throws -> (status: Int32, output: String) {
    let spawned = try WorkerProcess.spawn(executable: executable, arguments: arguments,
                                          environment: WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") } + environment)
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    var open = [spawned.stdout, spawned.stderr]
    let deadline = ContinuousClock.now.advanced(by: .seconds(30))
    while !open.isEmpty && ContinuousClock.now < deadline {
        var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
        for pfd in fds where pfd.revents != 0 {
            let count = read(pfd.fd, &buffer, buffer.count)
            if count > 0 { output += buffer[0..<count] } else { close(pfd.fd); open.removeAll { $0 == pfd.fd } }
        }
    }
    var status: Int32 = 0
    waitpid(spawned.pid, &status, 0)
    close(spawned.pidfd)
    return (exitCode(fromWaitStatus: status), String(decoding: output, as: UTF8.self))
}

/// WEXITSTATUS.
private func exitCode(fromWaitStatus status: Int32) -> Int32 { (status >> 8) & 0xff }

extension ProcessTests {
    @Suite struct CommandLineTests {
        @Test(arguments: [
            ["execnet-broker", "--help"], ["execnet-broker", "serve", "--help"], ["execnet-broker", "keygen", "--help"],
            ["execnet-broker", "status", "--help"], ["execnet-agent", "--help"], ["taskserver", "--help"],
        ])
        func everyEntrypointHasHelp(_ command: [String]) async throws {
            let (status, output) = try await runToCompletion("\(buildDirectory())/\(command[0])", Array(command.dropFirst()))
            #expect(status == 0)
            #expect(output.contains("USAGE"))
        }

        @Test(arguments: ["execnet-broker", "execnet-agent", "execnet-worker", "taskserver"])
        func everyCommandLineToolHasAVersion(_ tool: String) async throws {
            let (status, output) = try await runToCompletion("\(buildDirectory())/\(tool)", ["--version"])
            #expect(status == 0)
            #expect(output.contains(execnetVersion) && output.contains("wire protocol"))
        }

        @Test func badObservabilityOptionsAreRefused() async throws {
            let broker = try await runToCompletion("\(buildDirectory())/execnet-broker",
                                                   ["serve", "--bind", "tcp://127.0.0.1:*", "--http-address", "nope:port"])
            #expect(broker.status != 0 && broker.output.contains("--http-address"))
            let format = try await runToCompletion("\(buildDirectory())/execnet-broker",
                                                   ["serve", "--bind", "tcp://127.0.0.1:*", "--log-format", "xml"])
            #expect(format.status != 0 && format.output.contains("--log-format"))
        }

        @Test func theWorkerRefusesHeartbeatSettingsItCannotLiveByWithALineSayingWhy() async throws {
            let worker = "\(buildDirectory())/execnet-worker"
            let started = ["EXECNET_ENDPOINT=ipc:///nonexistent/execnet-settings-test", "EXECNET_ROUTING_ID=settings"]
            let bad: [(environment: [String], names: String)] = [
                (["EXECNET_HEARTBEAT_MS=100", "EXECNET_LIVENESS=0"], "EXECNET_LIVENESS"),
                (["EXECNET_HEARTBEAT_MS=100", "EXECNET_LIVENESS=-2"], "EXECNET_LIVENESS"),
                (["EXECNET_HEARTBEAT_MS=100", "EXECNET_LIVENESS=three"], "EXECNET_LIVENESS"),
                (["EXECNET_HEARTBEAT_MS=0"], "EXECNET_HEARTBEAT_MS"),
                (["EXECNET_HEARTBEAT_MS=soon"], "EXECNET_HEARTBEAT_MS"),
            ]
            for (environment, name) in bad {
                let refused = try await runToCompletion(worker, [], environment: started + environment)
                #expect(refused.status == 2, "\(environment): \(refused.output)")
                #expect(refused.output.contains("execnet worker: \(name) must be"), "\(environment): \(refused.output)")
            }
            let notStarted = try await runToCompletion(worker, [])
            #expect(notStarted.status == 2 && notStarted.output.contains("workers are started by gateways"))
        }

        @Test func aWorkerThatCannotArmItsParentDeathSignalSaysWhyItExits() async throws {
            // Its spawner is named as pid 1, which is not its parent: the worker cannot be sure to
            // die with whoever started it, so it refuses to run, saying so on stderr.
            let worker = "\(buildDirectory())/execnet-worker"
            let refused = try await runToCompletion(worker, [], environment: [
                "EXECNET_ENDPOINT=ipc:///nonexistent/execnet-settings-test", "EXECNET_ROUTING_ID=orphan", "EXECNET_PARENT_PID=1",
            ])
            #expect(refused.status == 3, "\(refused.output)")
            #expect(refused.output.contains("execnet worker: cannot arm the parent-death signal (EXECNET_PARENT_PID 1"),
                    "\(refused.output)")
        }

        @Test func theAgentRefusesANonPositiveHeartbeatInterval() async throws {
            let agent = "\(buildDirectory())/execnet-agent"
            let refused = try await runToCompletion(agent, ["--connect", "tcp://127.0.0.1:1", "--heartbeat-interval", "0"])
            #expect(refused.status != 0)
            #expect(refused.output.contains("heartbeat-interval"))
        }

        @Test func keygenWritesAPairAndRefusesToOverwrite() async throws {
            let directory = "/tmp/execnet-keygen-\(getpid())"
            mkdir(directory, 0o700)
            defer {
                unlink("\(directory)/k.key")
                unlink("\(directory)/k.pub")
                rmdir(directory)
            }
            let bin = "\(buildDirectory())/execnet-broker"
            let first = try await runToCompletion(bin, ["keygen", "--secret", "\(directory)/k.key", "--public", "\(directory)/k.pub"])
            #expect(first.status == 0)
            let pair = try CurveKeyPair.load(secretKeyFile: "\(directory)/k.key")
            #expect(try loadCurvePublicKey("\(directory)/k.pub") == pair.publicKey)
            var info = stat()
            stat("\(directory)/k.key", &info)
            #expect(info.st_mode & 0o777 == 0o600)
            let second = try await runToCompletion(bin, ["keygen", "--secret", "\(directory)/k.key", "--public", "\(directory)/k.pub"])
            #expect(second.status != 0)
        }

        @Test func statusPrintsATableAndJSON() async throws {
            let fixture = try BrokerFixture.current()
            let bin = "\(buildDirectory())/execnet-broker"
            let table = try await runToCompletion(bin, ["status", "--connect", fixture.endpoint])
            #expect(table.status == 0)
            #expect(table.output.contains("HOST") && table.output.contains("testhost"))
            let json = try await runToCompletion(bin, ["status", "--connect", fixture.endpoint, "--json"])
            #expect(json.status == 0)
            #expect(json.output.hasPrefix("{") && json.output.contains("\"hosts\":["))
            // The JSON is the typed status, Codable both ways: it decodes back to one.
            let typed = try BrokerStatus(await fetchBrokerStatus(fixture.endpoint))
            #expect(typed.hosts.contains { $0.name == "testhost" })
            #expect(typed.memoryCapBytes == BrokerLimits().maxInFlightBytes)
            let watched = try await runToCompletion(bin, ["status", "--connect", fixture.endpoint, "--json", "--watch",
                                                          "--interval", "0.05", "--count", "3"])
            #expect(watched.status == 0)
            #expect(watched.output.split(separator: "\n").filter { $0.hasPrefix("{\"channels\"") }.count == 3)
            let down = try await runToCompletion(bin, ["status", "--connect", "tcp://127.0.0.1:1", "--timeout", "0.3"])
            #expect(down.status != 0)
        }
    }
}
