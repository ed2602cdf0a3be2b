// Runs execnet's documented examples as ported in Sources/ExecnetExamples, as a user runs the
// program, and checks what it prints.

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
    @Suite struct ExamplesTests {
        @Test func execnetsDocumentedExamplesRunAsPorted() async throws {
            let environment = WorkerProcess.currentEnvironment().filter { !$0.hasPrefix("EXECNET_") }
            let child = try WorkerProcess.spawn(executable: "\(buildDirectory())/ExecnetExamples", arguments: [],
                                                environment: environment)
            defer { close(child.pidfd) }
            // The pipes and the pidfd are waited on from a thread of their own, not the cooperative pool.
            let (output, errors, exit) = await withCheckedContinuation { continuation in
                OSThread(name: "test-example") {
                    let (output, errors) = readToEnd(child.stdout, child.stderr, timeout: .seconds(60))
                    var exit: WorkerExit?
                    for _ in 0..<100 where exit == nil {
                        exit = WorkerProcess.reap(pidfd: child.pidfd)
                        var pfd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
                        if exit == nil { _ = poll(&pfd, 1, 100) }
                    }
                    continuation.resume(returning: (output, errors, exit))
                }.detach()
            }
            #expect(exit == .exited(0), "stderr: \(errors)")
            var cwd = [CChar](repeating: 0, count: 4096)
            _ = getcwd(&cwd, cwd.count)
            let here = String(decoding: cwd.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(output.split(separator: "\n").map(String.init) == [
                "remote cwd: '\(here)' == local cwd",
                "c1: 'hello'",
                "c2: 'world'",
                "received: 'hello world\\n'",
                "received: 'remote execution ends\\n'",
            ], "stderr: \(errors)")
        }
    }
}

/// Reads two pipes to their ends (or the deadline) and closes them.
private func readToEnd(_ out: Int32, _ err: Int32, timeout: Duration) -> (String, String) {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    var buffers: [Int32: [UInt8]] = [out: [], err: []]
    var open = [out, err]
    var chunk = [UInt8](repeating: 0, count: 4096)
    while !open.isEmpty, ContinuousClock.now < deadline {
        var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
        for pfd in fds where pfd.revents != 0 {
            let count = chunk.withUnsafeMutableBytes { read(pfd.fd, $0.baseAddress, $0.count) }
            if count > 0 {
                buffers[pfd.fd, default: []] += chunk[0..<count]
            } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                open.removeAll { $0 == pfd.fd }
            }
        }
    }
    close(out)
    close(err)
    return (String(decoding: buffers[out] ?? [], as: UTF8.self), String(decoding: buffers[err] ?? [], as: UTF8.self))
}
