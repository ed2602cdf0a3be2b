// How the integration tests wait: for an event, with a bound, and never by blocking the
// cooperative pool. An async wait polls with short suspensions (`pollFor`, `eventually`); a
// blocking call (a poll on a pipe, a read, waitpid, a blocking channel call) runs on a thread of
// its own (`offPool`).

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Tries `attempt` until it gives a value or `bound` has passed: a bounded wait for an event. The
/// pause between attempts is the poll interval, not a synchronisation; the task suspends in it.
func pollFor<T>(within bound: Duration, every interval: Duration = .milliseconds(5),
                _ attempt: () async throws -> T?) async throws -> T? {
    let deadline = ContinuousClock.now.advanced(by: bound)
    while true {
        if let value = try await attempt() { return value }
        if ContinuousClock.now >= deadline { return nil }
        try await Task.sleep(for: interval)
    }
}

/// Waits until `condition` holds or `bound` has passed; returns whether it holds.
@discardableResult
func eventually(within bound: Duration = .seconds(10), every interval: Duration = .milliseconds(5),
                _ condition: () async throws -> Bool) async throws -> Bool {
    try await pollFor(within: bound, every: interval) { try await condition() ? true : nil } ?? false
}

/// Runs blocking code on a thread of its own and returns its result, so the cooperative pool is
/// never blocked.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        OSThread(name: "test-blocking") { continuation.resume(with: Result { try body() }) }.detach()
    }
}

/// Reads `fd` to its end (or until `bound` has passed) on a thread of its own, and closes it.
func readToEnd(_ fd: Int32, within bound: Duration) async throws -> [UInt8] {
    try await offPool {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = ContinuousClock.now.advanced(by: bound)
        while ContinuousClock.now < deadline {
            if poll(&pfd, 1, 100) <= 0 { continue }
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        close(fd)
        return output
    }
}

/// Waits for the child `pid` to exit, on a thread of its own, and returns its wait status.
@discardableResult
func reap(_ pid: Int32) async throws -> Int32 {
    try await offPool {
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }
}
