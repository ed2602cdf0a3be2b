// The broker's dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven
// by selenium from the venv scripts/python-venv.sh makes): a real broker serving HTTP, two real
// agents, a real client. The browser side is scripts/dashboard_browser.py, which reads commands
// from a FIFO and answers each with a line. Without chromium, chromedriver or the venv the test
// fails: it never skips. With EXECNET_DASHBOARD_SCREENSHOT=PATH it also saves the page as a PNG
// (scripts/dashboard-screenshot.sh makes docs/img/dashboard.png that way).

import Execnet
@testable import ExecnetCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The browser script, started with its command FIFO; answers are read from its stdout.
final class DashboardBrowser: Sendable {
    private let child: SpawnedWorkerHandle
    private let commands: Int32

    struct SpawnedWorkerHandle: Sendable {
        let pid: Int32
        let pidfd: Int32
        let stdout: Int32
    }

    /// Starts the script on `url` and waits (bounded) for its ready line.
    ///
    /// - Important: Blocks the calling thread.
    init(url: String) throws {
        let root = packageRootDirectory()
        let python = root + "/.venv-crosscheck/bin/python"
        for (path, what) in [("/usr/bin/chromium", "Debian's chromium"), ("/usr/bin/chromedriver", "Debian's chromium-driver"),
                             (python, "the venv of scripts/python-venv.sh (with selenium)")] where access(path, X_OK) != 0 {
            throw ExecnetError(.workerNotFound, "the dashboard browser test needs \(what) at \(path): "
                + "apt-get install chromium chromium-driver, then bash scripts/python-venv.sh (the README's set-up line)")
        }
        var template = Array("/tmp/execnet-dashboard-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template) else { throw ExecnetError(.transport, "mkdtemp failed") }
        let fifo = String(cString: directory) + "/commands"
        guard mkfifo(fifo, 0o600) == 0 else { throw ExecnetError(.transport, "mkfifo failed") }
        let environment = WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") }
        let spawned = try WorkerProcess.spawn(executable: python, arguments: [root + "/scripts/dashboard_browser.py", url, fifo],
                                              environment: environment)
        child = SpawnedWorkerHandle(pid: spawned.pid, pidfd: spawned.pidfd, stdout: spawned.stdout)
        // Its stderr (selenium's and chromium's complaints) goes to the test's stderr; the last
        // 4 KiB are kept for the error when the script does not get ready.
        let stderrTail = ByteTail(limit: 4096)
        OSThread(name: "test-browser-stderr") {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(spawned.stderr, &buffer, buffer.count)
                if count <= 0 { break }
                _ = buffer.withUnsafeBytes { write(2, $0.baseAddress, count) }
                stderrTail.append(buffer[..<count])
            }
            close(spawned.stderr)
            stderrTail.finish()
        }.detach()
        switch Self.readLine(spawned.stdout, within: .seconds(90)) {
        case .line(let ready) where ready.hasPrefix("ready"):
            break
        case let outcome:
            WorkerProcess.killGroup(spawned.pid)
            let why: String
            switch outcome {
            case .line(let line): why = "it said '\(line)'"
            case .ended: why = "the script ended before it was ready"
            case .timedOut: why = "no answer within 90 s"
            }
            _ = stderrTail.waitFinished(within: .seconds(5))
            throw ExecnetError(.transport, "the browser did not open the dashboard: \(why); its stderr ends:\n\(stderrTail.text)")
        }
        // The script opens the FIFO for reading once it is ready: this open returns then.
        commands = open(fifo, O_WRONLY)
        unlink(fifo)
        rmdir(String(cString: directory))
        guard commands >= 0 else { throw ExecnetError(.transport, "cannot open the browser's command FIFO") }
    }

    /// Sends a command and returns the script's answer line.
    func ask(_ command: String, within bound: Duration = .seconds(60)) async throws -> String {
        try await offPool { [self] in
            let line = Array((command + "\n").utf8)
            guard line.withUnsafeBytes({ write(commands, $0.baseAddress, $0.count) }) == line.count else {
                throw ExecnetError(.transport, "the browser script is gone")
            }
            switch Self.readLine(child.stdout, within: bound) {
            case .line(let answer): return answer
            case .ended: throw ExecnetError(.transport, "the browser script ended without answering '\(command)'")
            case .timedOut: throw ExecnetError(.timeout, "no answer to '\(command)'")
            }
        }
    }

    /// What reading one line of the script's stdout gave.
    private enum ReadOutcome {
        case line(String)
        /// The script closed its stdout (it ended).
        case ended
        case timedOut
    }

    /// One line of the script's stdout, waiting at most `bound`.
    private static func readLine(_ fd: Int32, within bound: Duration) -> ReadOutcome {
        let deadline = ContinuousClock.now.advanced(by: bound)
        var byte: UInt8 = 0
        var line: [UInt8] = []
        while ContinuousClock.now < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 100) <= 0 { continue }
            if read(fd, &byte, 1) <= 0 { return .ended }
            if byte == 10 { return .line(String(decoding: line, as: UTF8.self)) }
            line.append(byte)
        }
        return .timedOut
    }

    /// Quits the browser and reaps the script (killed if it does not end within 20 s).
    func quit() {
        let quit = Array("quit\n".utf8)
        _ = quit.withUnsafeBytes { write(commands, $0.baseAddress, $0.count) }
        close(commands)
        var pfd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, 20_000) <= 0 { WorkerProcess.killGroup(child.pid) }
        _ = WorkerProcess.reap(pidfd: child.pidfd, killingGroup: child.pid)
        close(child.pidfd)
        close(child.stdout)
    }
}

/// The last bytes a child wrote to a pipe, kept for an error message.
final class ByteTail: Sendable {
    private let state = Mutex<(bytes: [UInt8], finished: Bool)>(([], false))
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func append(_ chunk: ArraySlice<UInt8>) {
        state.withLock { state in
            state.bytes.append(contentsOf: chunk)
            if state.bytes.count > limit { state.bytes.removeFirst(state.bytes.count - limit) }
        }
    }

    /// The pipe reached its end.
    func finish() { state.withLock { $0.finished = true } }

    /// Waits (blocking, polling every 10 ms) until the pipe has ended or `bound` has passed.
    func waitFinished(within bound: Duration) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: bound)
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.finished }) { return true }
            usleep(10_000)
        }
        return false
    }

    var text: String { String(decoding: state.withLock { $0.bytes }, as: UTF8.self) }
}

/// The package's root directory (this file is `Tests/ExecnetIntegrationTests/DashboardBrowserTests.swift`).
func packageRootDirectory() -> String {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
    return path
}

extension ProcessTests {
    @Suite struct DashboardBrowserTests {
        @Test func theDashboardShowsAgentsGatewaysAndDeathsInARealBrowser() async throws {
            let port = try freeLoopbackPort()
            let (broker, endpoint) = try await startBroker(bind: "tcp://127.0.0.1:*", ["--http-address", "127.0.0.1:\(port)"])
            defer { stopChild(broker) }
            let alpha = try await startAgent(endpoint, name: "alpha", slots: 4)
            defer { stopChild(alpha) }
            let beta = try await startAgent(endpoint, name: "beta", slots: 2)
            defer { stopChild(beta) }
            _ = try await scrapeUntil(port: port, path: "/readyz") { $0.hasPrefix("ready") }

            let browser = try await offPool { try DashboardBrowser(url: "http://127.0.0.1:\(port)/") }
            defer { browser.quit() }
            #expect(try await browser.ask("hosts alpha,beta 10").hasPrefix("ok"))

            let worker = "\(buildDirectory())/ExecnetTestWorker"
            let group = try Group()
            do {
                // A gateway is on the page within 1 s of its creation, and gone after it is terminated.
                let shown = try await group.makeGateway("broker=\(endpoint)//host=alpha//id=dash-shown//worker=\(worker)")
                let appeared = try await browser.ask("gateway dash-shown present 1.0")
                #expect(appeared.hasPrefix("ok"), "\(appeared)")
                shown.exit()
                #expect(await shown.join(timeout: .seconds(10)) != nil)
                let gone = try await browser.ask("gateway dash-shown absent 5")
                #expect(gone.hasPrefix("ok"), "\(gone)")

                // A worker killed with SIGKILL is among the deaths, with its signal.
                let doomed = try await group.makeGateway("broker=\(endpoint)//host=beta//id=dash-killed//worker=\(worker)")
                let channel = try doomed.remoteExec("pid-then-sleep")
                let pid = try #require(try await channel.receive(timeout: .seconds(10)).intValue)
                kill(Int32(pid), SIGKILL)
                let death = try await browser.ask("death dash-killed \(SIGKILL) 10")
                #expect(death.hasPrefix("ok"), "\(death)")
                #expect(death.contains("dash-killed on beta"), "\(death)")

                if let path = getenv("EXECNET_DASHBOARD_SCREENSHOT").map({ String(cString: $0) }) {
                    try await stageScreenshot(group, endpoint: endpoint, worker: worker, browser: browser, path: path)
                }
            } catch {
                await group.terminate(timeout: .seconds(2))
                throw error
            }
            await group.terminate(timeout: .seconds(2))
        }

        /// For the README's picture: a few gateways, traffic for the plots, a channel stalled on
        /// credit, and a worker that dies with stderr lines, then a screenshot.
        private func stageScreenshot(_ group: Group, endpoint: String, worker: String, browser: DashboardBrowser,
                                     path: String) async throws {
            var channels: [Channel] = []
            for (index, host) in ["alpha", "alpha", "alpha", "beta"].enumerated() {
                let gateway = try await group.makeGateway("broker=\(endpoint)//host=\(host)//id=build-\(index)//worker=\(worker)")
                channels.append(try gateway.remoteExec("echo"))
            }
            let second = try Group()
            defer { Task { await second.terminate(timeout: .seconds(2)) } }
            let crashing = try await second.makeGateway("broker=\(endpoint)//host=beta//id=report-7//worker=\(worker)")
            let waiting = try await second.makeGateway("broker=\(endpoint)//host=alpha//id=report-8//worker=\(worker)")
            // A channel nobody reads: its worker runs out of credit (a stall on the page).
            _ = try waiting.remoteExec("count", arguments: [.int(Int64(FlowWindow.messages + 100))])
            let last = try crashing.remoteExec("stderr-then-exit", arguments: [3])
            _ = try? await last.waitClose(timeout: .seconds(10))
            // Traffic for the plots: rounds of echoes for a few seconds.
            let until = ContinuousClock.now.advanced(by: .seconds(8))
            var round = 0
            while ContinuousClock.now < until {
                for channel in channels { try await channel.send(.bytes(Array(repeating: UInt8(round & 0xff), count: 2048 * (1 + round % 4)))) }
                for channel in channels { _ = try await channel.receive(timeout: .seconds(10)) }
                round += 1
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await browser.ask("screenshot \(path)").hasPrefix("ok"))
            await second.terminate(timeout: .seconds(2))
        }
    }
}
