// A real execnet-agent: it forwards its workers' output line by line, each line with its gateway's
// prefix, however the pipe cuts it (a worker, a shell script, writes one line in two chunks, the
// second only once the agent has read the first); a broker's WELCOME with heartbeat settings out of
// range does not stop it.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Synchronization
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A child process whose stdout and stderr are collected by threads of their own.
final class CollectedChild: Sendable {
    let pid: Int32
    let pidfd: Int32
    private let collected = Collected()

    private final class Collected: Sendable {
        let output = Mutex<(stdout: [UInt8], stderr: [UInt8])>(([], []))
    }

    init(_ executable: String, _ arguments: [String]) throws {
        let environment = WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") }
        let spawned = try WorkerProcess.spawn(executable: executable, arguments: arguments, environment: environment)
        pid = spawned.pid
        pidfd = spawned.pidfd
        for (fd, isStdout) in [(spawned.stdout, true), (spawned.stderr, false)] {
            OSThread(name: "test-collect") { [collected] in
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&pfd, 1, -1)
                    let count = read(fd, &buffer, buffer.count)
                    if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { break }
                    if count > 0 {
                        collected.output.withLock { if isStdout { $0.stdout += buffer[0..<count] } else { $0.stderr += buffer[0..<count] } }
                    }
                }
                close(fd)
            }.detach()
        }
    }

    var stdout: String { collected.output.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    var stderr: String { collected.output.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    /// Waits up to `timeout` for `condition` to hold; returns whether it did.
    func wait(_ timeout: Duration, until condition: (CollectedChild) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self)
    }
}

/// Waits up to `timeout` for `condition`; returns whether it held.
private func eventually(_ timeout: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Whether the pipe on `fd` of process `pid` holds unread bytes (read through a second read end
/// opened from /proc, which reads nothing).
private func pipeHoldsData(pid: Int32, fd: Int32) -> Bool? {
    let reader = open("/proc/\(pid)/fd/\(fd)", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard reader >= 0 else { return nil }
    defer { close(reader) }
    var pfd = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
    guard poll(&pfd, 1, 0) >= 0 else { return nil }
    return pfd.revents & Int16(POLLIN) != 0
}

extension ProcessTests {
    @Suite struct HostAgentTests {
        @Test func aLineWrittenInTwoChunksIsForwardedAsOneLineWithOnePrefix() async throws {
            let directory = "/tmp/execnet-lines-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            mkdir(directory, 0o700)
            let script = directory + "/worker.sh"
            defer {
                for name in ["worker.sh", "pid", "pid.tmp", "go"] { unlink("\(directory)/\(name)") }
                rmdir(directory)
            }
            // The first half, then the pid (once the half is in the pipe: printf is a process of its
            // own here, so nothing is buffered), then the second half once the test says go, and a
            // last line without a newline.
            let text = """
                #!/bin/sh
                env printf 'first-half-'
                echo $$ > '\(directory)/pid.tmp' && mv '\(directory)/pid.tmp' '\(directory)/pid'
                while [ ! -e '\(directory)/go' ]; do sleep 0.01; done
                env printf 'second-half\\n'
                env printf 'last-words'
                exit 3

                """
            let fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
            _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
            close(fd)

            let (broker, endpoint) = try await startBroker()
            defer { stopChild(broker) }
            let agent = try CollectedChild("\(buildDirectory())/execnet-agent", [
                "--connect", endpoint, "--name", "linehost", "--slots", "2", "--allow", script, "--log-level", "error",
            ])
            defer { stopChild(ChildProcess(pid: agent.pid, pidfd: agent.pidfd)) }
            try #require(await agent.wait(.seconds(20)) { $0.stdout.hasPrefix("execnet-agent:") }, "the agent did not start")
            var registered = false
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            while !registered && ContinuousClock.now < deadline {
                // The status query blocks; fetchBrokerStatus runs it on a thread of its own.
                if case .dict(let status)? = try? await fetchBrokerStatus(endpoint, timeout: .seconds(2)),
                    case .list(let hosts)? = status[.string("hosts")] {
                    registered = hosts.contains { $0.dictValue?[.string("name")] == .string("linehost") }
                }
                if !registered { try await Task.sleep(for: .milliseconds(20)) }
            }
            try #require(registered, "the agent never registered")

            // The worker never says hello: the start fails once it exits.
            let starting = Task { try await Group(["broker=\(endpoint)//host=linehost//id=linegw//worker=\(script)"]) }
            var pid: Int32?
            try #require(await eventually(.seconds(20)) {
                pid = readPid(directory + "/pid")
                return pid != nil
            }, "the worker script did not start")
            // The agent has read the first half before the second is written.
            let firstHalfRead = await eventually(.seconds(10)) { pipeHoldsData(pid: pid!, fd: 1) == false }
            try #require(firstHalfRead, "the agent did not read the worker's output")
            close(open(directory + "/go", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600))

            await #expect(throws: (any Error).self) { try await starting.value }
            // The partial last line is flushed when the worker exits.
            let flushed = await agent.wait(.seconds(10)) { $0.stderr.contains("[linegw] last-words\n") }
            let lines = agent.stderr.split(separator: "\n").map(String.init)
            #expect(flushed, "no last line in: \(lines)")
            #expect(lines.filter { $0.contains("half") } == ["[linegw] first-half-second-half"])
        }

        @Test func aWelcomeWithHeartbeatSettingsOutOfRangeDoesNotStopTheAgent() async throws {
            // This test is the broker: a ROUTER that answers the agent's hello.
            let broker = try RawAgentBroker()
            let router = broker.router
            defer { broker.close() }
            let agent = try broker.startAgent(name: "hostilehost")
            defer { stopChild(ChildProcess(pid: agent.pid, pidfd: agent.pidfd)) }
            /// The routing id of the next message of this type from the agent (within 10 s).
            func next(_ type: MessageType) async -> [UInt8]? {
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while ContinuousClock.now < deadline {
                    if let frames = try? router.receive(dontWait: true) {
                        if frames.count > 1, (try? WireMessage.parse(Array(frames.dropFirst())))?.type == type { return frames[0] }
                    } else {
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
                return nil
            }
            let agentID = try #require(await next(.agentHello), "the agent did not say hello")
            let welcomes: [[String: Int64]] = [
                ["heartbeat_ms": 100, "liveness": 0], ["heartbeat_ms": 100, "liveness": -1],
                ["heartbeat_ms": 0, "liveness": 3], ["heartbeat_ms": .max, "liveness": .max],
            ]
            for fields in welcomes {
                var welcome = ControlPayload()
                for (key, value) in fields { welcome[key] = .int(value) }
                _ = try router.send([agentID] + WireMessage(channelID: 0, type: .welcome, payload: welcome.encoded).frames)
                // Registered (with its own settings) and alive: it heartbeats.
                let heartbeat = await next(.heartbeat)
                try #require(heartbeat == agentID, "no heartbeat after WELCOME \(fields)")
            }
            #expect(processExists(agent.pid) && pipeHoldsData(pid: agent.pid, fd: 1) != nil)
        }
    }
}

/// The pid a script wrote to `path`, once the file is there.
private func readPid(_ path: String) -> Int32? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = read(fd, &buffer, buffer.count)
    guard count > 0 else { return nil }
    return Int32(String(decoding: buffer[0..<count].filter { (48...57).contains($0) }, as: UTF8.self))
}
