// Helpers shared by the ZeroMQ tests: a plain pthread (so a socket can live on a thread of its
// own), a private temporary directory for ipc endpoints, the transports to parameterize over,
// and bounded waits. Nothing here sleeps longer than a few milliseconds at a time.

import Glibc
import Synchronization
import Testing
import ZeroMQ

/// A joinable POSIX thread running one closure; sockets it uses must be created inside it.
final class TestThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private let thread: pthread_t

    init(_ run: @escaping @Sendable () -> Void) {
        let body = Unmanaged.passRetained(Body(run)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, body)
        precondition(result == 0, "pthread_create failed with \(result).")
        self.thread = thread
    }

    /// Waits for the thread to finish.
    func join() {
        pthread_join(thread, nil)
    }
}

/// A flag one thread raises and another waits for, with a deadline.
final class Flag: Sendable {
    private let raised = Atomic<Bool>(false)

    func raise() {
        raised.store(true, ordering: .releasing)
    }

    var isRaised: Bool {
        raised.load(ordering: .acquiring)
    }

    /// Waits until raised or `timeout` passes; returns whether it was raised.
    func wait(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !isRaised {
            if ContinuousClock.now >= deadline {
                return false
            }
            sleep(for: .milliseconds(2))
        }
        return true
    }
}

/// Runs `body` on a new thread and reports whether it finished within `timeout`.
///
/// If it did not, the thread is left behind (it is hung) and the test fails on the result.
func finishes(within timeout: Duration, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = Flag()
    let thread = TestThread {
        body()
        done.raise()
    }
    guard done.wait(timeout: timeout) else {
        return false
    }
    thread.join()
    return true
}

/// Blocks the calling thread for `duration`.
func sleep(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR {
        request = remaining
    }
}

/// A directory under /tmp that only this test uses, removed with its contents at the end.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/zmqtests.XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(created != nil, "mkdtemp failed with errno \(errno)")
        path = String(cString: created!)
    }

    deinit {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." {
                    unlink(path + "/" + name)
                }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}

/// The transports every round trip runs over.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case inproc
    case ipc
    case tcp

    var testDescription: String { rawValue }

    /// An endpoint to bind that no other test uses.
    func bindEndpoint(in directory: TemporaryDirectory) -> String {
        switch self {
        case .inproc: "inproc://zmqtests-\(UInt64.random(in: 0...UInt64.max))"
        case .ipc: "ipc://\(directory.path)/socket"
        case .tcp: "tcp://127.0.0.1:*"
        }
    }
}

/// A unique inproc endpoint.
func uniqueInprocEndpoint(_ label: String) -> String {
    "inproc://\(label)-\(UInt64.random(in: 0...UInt64.max))"
}

/// Bytes of `count` with a position-dependent pattern, so misplaced or dropped bytes show.
func patternBytes(count: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        // A 251-byte period (prime) shifted per 64 KiB block: cheap even in debug builds.
        var block: [UInt8] = (0..<251).map { UInt8($0) }
        var offset = 0
        while offset < count {
            let length = min(block.count, count - offset)
            block.withUnsafeBufferPointer { source in
                (buffer.baseAddress! + offset).initialize(from: source.baseAddress!, count: length)
            }
            offset += length
            if offset % (64 * 1024) < length {
                block.append(block.removeFirst())
            }
        }
        initialized = count
    }
}

/// Whether two buffers hold the same bytes, compared with memcmp (fast even in debug builds).
func sameBytes(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    lhs.count == rhs.count && (lhs.count == 0 || memcmp(lhs.baseAddress!, rhs.baseAddress!, lhs.count) == 0)
}

/// How long "must happen" waits may take on a loaded machine.
let generousWait: Int32 = 5_000

/// How long to watch for something that must not happen.
let briefWatch: Duration = .milliseconds(500)

/// The error a helper thread ended with, read by the test after joining it.
final class Outcome: Sendable {
    private let stored = Mutex<ZMQError?>(nil)

    func record(_ error: ZMQError) {
        stored.withLock { $0 = error }
    }

    var error: ZMQError? {
        stored.withLock { $0 }
    }
}
