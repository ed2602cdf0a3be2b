// Tests for ZMQPoller: a plain file descriptor written from another thread wakes a poll, a quiet
// poll times out, and sockets with waiting messages are reported readable. Timeouts are generous
// for what must happen and short only for what must not.

import Glibc
import Testing
import ZeroMQ

@Suite struct ZMQPollerTests {
    @Test func aPipeWrittenFromAnotherThreadWakesThePoll() throws {
        var descriptors: [Int32] = [-1, -1]
        try #require(pipe(&descriptors) == 0)
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let context = try ZMQContext()
        defer { context.terminate() }
        let quiet = try ZMQSocket(context: context, type: .router)
        defer { quiet.close() }
        try quiet.bind(uniqueInprocEndpoint("quiet"))

        var poller = ZMQPoller()
        let socketIndex = poller.add(quiet, events: .readable)
        let pipeIndex = poller.add(fileDescriptor: readEnd, events: .readable)

        let writer = TestThread {
            // Gives the poll below time to block first, so the write wakes it: a deliberate delay on
            // the writer's own thread, not a synchronisation (the poll sees the byte either way).
            sleep(for: .milliseconds(50))
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
        }
        defer { writer.join() }

        let result = try poller.poll(timeout: .seconds(5))
        #expect(result == .ready(count: 1))
        #expect(poller.readyEvents(at: pipeIndex) == .readable)
        #expect(poller.readyEvents(at: socketIndex).isEmpty)
    }

    @Test func aQuietPollTimesOut() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let quiet = try ZMQSocket(context: context, type: .dealer)
        defer { quiet.close() }
        var poller = ZMQPoller([.socket(quiet, .readable)])
        #expect(poller.count == 1)

        #expect(try poller.poll(timeout: .zero) == .timedOut)
        #expect(try poller.poll(timeout: .milliseconds(50)) == .timedOut)
        #expect(poller.readyEvents(at: 0).isEmpty)
    }

    @Test func socketsWithWaitingMessagesAreReadable() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try dealer.connect(try router.bind("tcp://127.0.0.1:*"))

        var poller = ZMQPoller()
        let routerIndex = poller.add(router, events: .readable)
        let dealerIndex = poller.add(dealer, events: .readable)
        try dealer.send([Array("wake".utf8)])

        #expect(try poller.poll(timeout: .seconds(5)) == .ready(count: 1))
        #expect(poller.readyEvents(at: routerIndex) == .readable)
        #expect(poller.readyEvents(at: dealerIndex).isEmpty)
        let message = try #require(try router.receive(dontWait: true))
        #expect(message.last == Array("wake".utf8))

        // Interest can change between polls: a connected DEALER is writable at once.
        poller.setEvents([], at: routerIndex)
        poller.setEvents(.writable, at: dealerIndex)
        #expect(try poller.poll(timeout: .seconds(5)) == .ready(count: 1))
        #expect(poller.readyEvents(at: dealerIndex) == .writable)
    }

    @Test func shutdownFromAnotherThreadEndsAPollWithTerminated() throws {
        let context = try ZMQContext()
        let started = Flag()
        let outcome = Outcome()
        let owner = TestThread {
            do {
                let socket = try ZMQSocket(context: context, type: .router)
                defer { socket.close() }
                var poller = ZMQPoller()
                poller.add(socket, events: .readable)
                started.raise()
                while true {
                    _ = try poller.poll(timeout: nil)
                }
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

    @Test func pollingASocketClosedWhileInThePollerTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let context = try ZMQContext()
            let socket = try ZMQSocket(context: context, type: .dealer)
            var poller = ZMQPoller()
            poller.add(socket, events: .readable)
            socket.close()
            _ = try poller.poll(timeout: .zero)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("A ZMQSocket was closed while still in a ZMQPoller."))
    }
}
