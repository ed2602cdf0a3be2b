// Liveness of local (popen) workers: a stopped worker is killed after the liveness window and its
// channels end with the cause "unresponsive"; a worker whose I/O thread is held by a long task is
// busy, not dead.

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

extension ProcessTests {
    @Suite struct LocalLivenessTests {
        @Test func aStoppedLocalWorkerIsKilledAndItsChannelsEndAsUnresponsive() async throws {
            // The default window (1 s × 3).
            let group = try await Group([testWorkerSpec(), testWorkerSpec()])
            let stopped = try group[0].remoteExec("wait-release")
            let other = try group[1].remoteExec("wait-release")
            let pid = try #require(group[0].pid)
            let queue = try MultiChannel([stopped]).makeReceiveQueue(endmarker: "ended")
            kill(pid, SIGSTOP)
            #expect(try await queue.get(timeout: .seconds(20)).1 == "ended")
            do {
                try await stopped.waitClose(timeout: .seconds(5))
                Issue.record("expected the channel to end with an error")
            } catch {
                #expect("\(error)".contains("unresponsive"), "the cause: \(error)")
            }
            #expect(group[0].exitStatus == .signaled(SIGKILL))
            #expect(await waitUntilGone([pid]))
            // The other worker is untouched.
            try await other.send("fine")
            #expect(try await other.receive(timeout: .seconds(10)) == "fine")
            await group.terminate(timeout: .seconds(2))
        }

        @Test func aWorkerWhoseIOThreadIsHeldByALongTaskIsNotDeclaredDead() async throws {
            // A short window (50 ms × 3), held for ten times as long.
            ExecnetSettings.setLocalLiveness(LivenessSettings(interval: .milliseconds(50), liveness: 3))
            defer { ExecnetSettings.setLocalLiveness(.default) }
            try await withTestGroup(1) { group in
                let channel = try group[0].remoteExec("hold-io-thread", .int(1_500))
                #expect(try await channel.receive(timeout: .seconds(20)) == "done")
                #expect(group[0].isAlive)
                let status = try await group[0].remoteStatus()
                #expect(status.executingCount >= 0)
            }
        }
    }
}
