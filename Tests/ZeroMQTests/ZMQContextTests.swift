// Tests for ZMQContext: termination is bounded even with unsent messages, shutdown wakes a
// thread blocked in a receive, and terminate is idempotent. Each potentially hanging call runs
// on a helper thread with a generous deadline, so a regression fails instead of hanging.

import Testing
import ZeroMQ

@Suite struct ZMQContextTests {
    /// Returns a tcp endpoint on which nothing listens any more.
    private func deadEndpoint(_ context: ZMQContext) throws -> String {
        let listener = try ZMQSocket(context: context, type: .router)
        defer { listener.close() }
        let endpoint = try listener.bind("tcp://127.0.0.1:*")
        try listener.unbind(endpoint)
        return endpoint
    }

    @Test(arguments: [Int32(0), 200])
    func terminateReturnsAfterClosingASocketWithUnsentMessages(lingerMilliseconds: Int32) throws {
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setLinger(milliseconds: lingerMilliseconds)
        try dealer.connect(try deadEndpoint(context))
        var queued = 0
        for _ in 0..<100 where try dealer.send([patternBytes(count: 1024)], dontWait: true) {
            queued += 1
        }
        #expect(queued > 0)
        dealer.close()

        #expect(finishes(within: .seconds(5)) { context.terminate() })
        #expect(context.isTerminated)
    }

    @Test func socketsStartWithZeroLinger() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .dealer)
        defer { socket.close() }
        #expect(try socket.linger() == 0)
    }

    @Test func shutdownWakesAThreadBlockedInReceive() throws {
        let context = try ZMQContext()
        let endpoint = try deadEndpoint(context)
        let started = Flag()
        let outcome = Outcome()
        let owner = TestThread {
            do {
                // The socket lives and dies on this thread, with messages still unsent.
                let dealer = try ZMQSocket(context: context, type: .dealer)
                defer { dealer.close() }
                try dealer.connect(endpoint)
                try dealer.send([Array("never delivered".utf8)])
                started.raise()
                _ = try dealer.receive()
                Issue.record("receive returned without a message")
            } catch let error as ZMQError {
                outcome.record(error)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        #expect(started.wait(timeout: .seconds(5)))
        context.shutdown()
        owner.join()
        #expect(outcome.error?.isTerminated == true)
        #expect(finishes(within: .seconds(5)) { context.terminate() })
    }

    @Test func terminateIsIdempotentAndStopsSocketCreation() throws {
        let context = try ZMQContext()
        #expect(!context.isTerminated)
        context.shutdown()
        #expect(!context.isTerminated)
        context.terminate()
        context.terminate()
        context.shutdown()
        #expect(context.isTerminated)

        let error = #expect(throws: ZMQError.self) {
            _ = try ZMQSocket(context: context, type: .router)
        }
        #expect(error?.isTerminated == true)
    }

    @Test func ioThreadsCanBeConfiguredBeforeTheFirstSocket() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        #expect(context.ioThreads == 1)
        try context.setIOThreads(2)
        #expect(context.ioThreads == 2)
    }

    @Test func theLoadedLibraryIsVersionFourOrLater() {
        let version = ZMQVersion.current
        #expect(version.major >= 4)
        #expect(version.minor >= 0 && version.patch >= 0)
    }
}
