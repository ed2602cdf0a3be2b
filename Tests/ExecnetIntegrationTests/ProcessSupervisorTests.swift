// The process supervisor of the hub and the host agent, on an I/O thread of its own, with real
// processes (/bin/sh): output comes line by line (CR LF, a partial last line, over-long lines in
// pieces) and before the exit, which is reported once; a killed worker takes its process group
// with it; a stopping role kills and reaps what still runs and reports nothing.

import Execnet
@testable import ExecnetCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a supervisor reported, in order.
private enum SupervisorEvent: Equatable, Sendable {
    case line(Int, WorkerOutputStream, String)
    case exit(Int, WorkerExit)
}

private final class SupervisorEvents: Sendable {
    let events = Mutex<[SupervisorEvent]>([])
    let pids = Mutex<[Int: Int32]>([:])
    let failures = Mutex<[String]>([])

    var all: [SupervisorEvent] { events.withLock { $0 } }

    /// Waits up to 10 s for `condition` on the events so far; returns whether it held.
    func wait(until condition: ([SupervisorEvent]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while ContinuousClock.now < deadline {
            if condition(all) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(all)
    }
}

/// An I/O-thread role that only supervises processes, with lines of at most 8 bytes.
private final class SupervisingRole: IOThreadRole {
    enum Command: Sendable {
        case spawn(key: Int, script: String)
        case signal(key: Int, signal: Int32)
    }

    let events: SupervisorEvents
    var supervisor: ProcessSupervisor<Int>?

    init(events: SupervisorEvents) {
        self.events = events
    }

    func setUp(_ loop: IOLoop) throws {
        supervisor = ProcessSupervisor(
            loop: loop, maximumLineLength: 8,
            onLine: { [events] key, stream, line in
                events.events.withLock { $0.append(.line(key, stream, String(decoding: line, as: UTF8.self))) }
            },
            onExit: { [events] key, exit in events.events.withLock { $0.append(.exit(key, exit)) } })
    }

    func handle(_ command: Command, _ loop: IOLoop) {
        switch command {
        case .spawn(let key, let script):
            do {
                let pid = try supervisor!.spawn(key, executable: "/bin/sh", arguments: ["-c", script],
                                                environment: ["PATH=/usr/bin:/bin"])
                events.pids.withLock { $0[key] = pid }
            } catch {
                events.failures.withLock { $0.append("\(key): \(error)") }
            }
        case .signal(let key, let signal):
            if supervisor?.signal(key, signal) != true { events.failures.withLock { $0.append("\(key): no process to signal") } }
        }
    }

    func afterWakeUp(_ loop: IOLoop) {}

    func tearDown(_ loop: IOLoop) {
        supervisor?.terminateAll(within: .seconds(2))
    }
}

extension ProcessTests {
    @Suite struct ProcessSupervisorTests {
        @Test func outputComesLineByLineBeforeTheExitWhichIsReportedOnce() async throws {
            let events = SupervisorEvents()
            let io = try IOThread(name: "test-supervisor") { SupervisingRole(events: events) }
            // Two writes per line on stdout, CR LF, a line over the bound, stderr, and a partial last line.
            io.submit(.spawn(key: 1, script: """
                printf 'on'; printf 'e\\r\\n'; printf 'two\\nthree-is-long\\n'; printf 'err\\n' >&2; printf 'last'; exit 3
                """))
            let exited = await events.wait { $0.contains(.exit(1, .exited(3))) }
            await io.stopAndWait()
            #expect(exited)
            let all = events.all
            #expect(all.filter { if case .line(_, .stdout, _) = $0 { true } else { false } } == [
                .line(1, .stdout, "one"), .line(1, .stdout, "two"), .line(1, .stdout, "three-is"),
                .line(1, .stdout, "-long"), .line(1, .stdout, "last"),
            ])
            #expect(all.filter { if case .line(_, .stderr, _) = $0 { true } else { false } } == [.line(1, .stderr, "err")])
            // Every line before the exit, and the exit once.
            #expect(all.last == .exit(1, .exited(3)))
            #expect(all.filter { if case .exit = $0 { true } else { false } }.count == 1)
            #expect(events.failures.withLock { $0 }.isEmpty)
        }

        @Test func aKilledWorkerTakesItsProcessGroupWithIt() async throws {
            let events = SupervisorEvents()
            let io = try IOThread(name: "test-supervisor") { SupervisingRole(events: events) }
            // A child in the worker's group; its pid is the worker's first line.
            io.submit(.spawn(key: 7, script: "sleep 600 & echo $!; exec sleep 600"))
            let started = await events.wait { $0.contains { if case .line(7, .stdout, _) = $0 { true } else { false } } }
            try #require(started, "the worker did not start")
            let child = events.all.compactMap { event -> Int32? in
                if case .line(7, .stdout, let text) = event { return Int32(text) }
                return nil
            }.first
            let grandchild = try #require(child)
            #expect(processExists(grandchild))
            io.submit(.signal(key: 7, signal: SIGKILL))
            let killed = await events.wait { $0.contains(.exit(7, .signaled(SIGKILL))) }
            #expect(killed)
            #expect(await waitUntilGone([grandchild]))
            // The same key may run a new process once the old one was reported.
            io.submit(.spawn(key: 7, script: "exit 0"))
            #expect(await events.wait { $0.contains(.exit(7, .exited(0))) })
            await io.stopAndWait()
            #expect(events.failures.withLock { $0 }.isEmpty)
        }

        @Test func aSecondProcessUnderOneKeyIsRefusedAndAStoppingRoleKillsWhatRuns() async throws {
            let events = SupervisorEvents()
            let io = try IOThread(name: "test-supervisor") { SupervisingRole(events: events) }
            io.submit(.spawn(key: 1, script: "exec sleep 600"))
            io.submit(.spawn(key: 1, script: "exec sleep 600"))
            #expect(await events.wait { _ in events.failures.withLock { $0.count } == 1 })
            #expect(events.failures.withLock { $0 }.first?.contains("already") == true)
            let pid = try #require(events.pids.withLock { $0[1] })
            #expect(processExists(pid))
            await io.stopAndWait()
            // Killed and reaped at once by the tear-down (not a zombie), and no exit reported.
            #expect(!processExists(pid))
            #expect(!events.all.contains { if case .exit = $0 { true } else { false } })
        }
    }
}
