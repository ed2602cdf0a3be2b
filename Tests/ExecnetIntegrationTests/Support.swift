// Shared helpers for the integration tests: where the test worker is, a group that is always
// terminated, and the check that no worker process outlives its test.

import Execnet
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every process test runs under this one serialized suite (the machine has two cores).
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ProcessTests {}

/// The directory holding the test bundle and the built executables.
func buildDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let path = String(decoding: buffer[0..<max(count, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var directory = path[..<(path.lastIndex(of: "/") ?? path.endIndex)]
    // On Linux the bundle is `<build>/swift-execnetPackageTests.xctest`, a file beside the executables.
    if directory.hasSuffix(".xctest") { directory = directory[..<(directory.lastIndex(of: "/") ?? directory.endIndex)] }
    return String(directory)
}

/// The spec of a popen gateway running the test worker.
func testWorkerSpec(_ extra: String = "") -> String {
    "popen//worker=\(buildDirectory())/ExecnetTestWorker" + extra
}

/// Whether a process with this pid exists.
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno != ESRCH
}

/// Waits up to `timeout` for every pid to be gone; true if they all are.
func waitUntilGone(_ pids: [Int32], timeout: Duration = .seconds(5)) async -> Bool {
    (try? await eventually(within: timeout, every: .milliseconds(10)) { !pids.contains(where: processExists) }) ?? false
}

/// Runs `body` with a group of `count` test-worker gateways; terminates it afterwards and checks
/// that no worker pid survives.
func withTestGroup(
    _ count: Int, specs: [String]? = nil, _ body: (Group) async throws -> Void
) async throws {
    let group = try await Group(specs ?? Array(repeating: testWorkerSpec(), count: count))
    let pids = group.gateways.compactMap(\.pid)
    do {
        try await body(group)
    } catch {
        await group.terminate(timeout: .seconds(1))
        throw error
    }
    await group.terminate(timeout: .seconds(2))
    #expect(await waitUntilGone(pids), "worker processes survived their test: \(pids.filter(processExists))")
}

/// Asserts that `body` throws an ``ExecnetError`` with `code`.
func expectExecnetError<T>(
    _ code: ExecnetError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async {
    do {
        _ = try await body()
        Issue.record("expected ExecnetError.\(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ExecnetError {
        #expect(error.code == code, "expected \(code), got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected ExecnetError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}
