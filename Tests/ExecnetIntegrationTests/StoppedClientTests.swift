// A client that was itself stopped (SIGSTOP, then SIGCONT) for longer than the broker's liveness
// window must not report that the broker died or restarted: the silence it would measure is its
// own. The broker forgot it meanwhile, and its gateway ends saying so.

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

/// Reads lines from `fd` (non-blocking) until one starts with `prefix`, the end of the output, or
/// `timeout`; every line read goes to `seen`.
private func readLine(startingWith prefix: String, from fd: Int32, timeout: Duration, seen: inout [String]) -> String? {
    var line: [UInt8] = []
    var byte: UInt8 = 0
    var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if poll(&pfd, 1, 100) <= 0 { continue }
        let count = read(fd, &byte, 1)
        if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
        guard count == 1 else { return nil }
        if byte != 10 {
            line.append(byte)
            continue
        }
        let text = String(decoding: line, as: UTF8.self)
        seen.append(text)
        if text.hasPrefix(prefix) { return text }
        line = []
    }
    return nil
}

extension ProcessTests {
    @Suite struct StoppedClientTests {
        @Test func aClientStoppedPastTheWindowDoesNotReportTheBrokerDead() async throws {
            let spec = try testWorkerSpec(.broker)
            let environment = WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") }
            let spawned = try WorkerProcess.spawn(
                executable: "\(buildDirectory())/ExecnetTestClient", arguments: ["stop-check", spec], environment: environment)
            defer {
                stopChild(ChildProcess(pid: spawned.pid, pidfd: spawned.pidfd), grace: .milliseconds(100))
                close(spawned.stdout)
                close(spawned.stderr)
            }
            // The pipe is read on a thread of its own, not on the cooperative pool.
            let stdout = spawned.stdout
            let (ready, early) = try await offPool { () -> (String?, [String]) in
                var seen: [String] = []
                return (readLine(startingWith: "READY", from: stdout, timeout: .seconds(20), seen: &seen), seen)
            }
            var seen = early
            try #require(ready != nil, "the client did not start: \(seen)")
            // Stopped for twice the broker's window (0.2 s x 5): the stimulus, not a wait.
            kill(spawned.pid, SIGSTOP)
            try await Task.sleep(for: .seconds(2))
            kill(spawned.pid, SIGCONT)
            let (ended, later) = try await offPool { () -> (String?, [String]) in
                var seen: [String] = []
                return (readLine(startingWith: "ENDED", from: stdout, timeout: .seconds(20), seen: &seen), seen)
            }
            seen += later
            var status: Int32 = 0
            let exited = waitpid(spawned.pid, &status, WNOHANG) == spawned.pid
            try #require(ended != nil, "no ENDED line; output \(seen), exited \(exited) with status \(status)")
            guard let ended else { return }
            // Neither "stopped answering heartbeats" nor "restarted": the client says it was not running.
            #expect(!ended.contains("stopped answering"), "the client blamed the broker: \(ended)")
            #expect(!ended.contains("restarted"), "the client blamed the broker: \(ended)")
            #expect(ended.contains("this client was not running"), "\(ended)")
        }
    }
}
