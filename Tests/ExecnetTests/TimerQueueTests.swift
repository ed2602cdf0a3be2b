// The I/O thread's timer queue: deadline order, cancellation that frees the entry at once, timed
// waits that leave nothing behind when they end early (the leak of one sleeping task per timed
// wait), and timed waits with no running I/O thread (a detached channel, a thread that stopped).

@testable import Execnet
import Synchronization
import Testing

/// A connection whose transport sends nowhere and whose timers are a real I/O thread's.
private struct TimerTestTransport: FrameTransport {
    let io: IOThread<TimerOnlyRole>
    func submit(_ message: WireMessage) -> Bool { true }
    var isOnIOThread: Bool { io.isCurrent }
    var timers: TimerQueue? { io.timers }
}

private func makeConnection() throws -> (IOThread<TimerOnlyRole>, PeerConnection) {
    let io = try IOThread(name: "execnet-timer-test") { TimerOnlyRole() }
    let connection = PeerConnection(gatewayID: "timers", side: .client, transport: TimerTestTransport(io: io),
                                    logger: .init(label: "timers"))
    return (io, connection)
}

/// Waits (bounded, without sleeping) until the channel has a receiver waiting.
private func untilWaiting(_ channel: Channel) async -> Bool {
    let deadline = ContinuousClock.now.advanced(by: .seconds(10))
    while channel.core.state.withLock({ $0.receivers.isEmpty }) {
        if ContinuousClock.now >= deadline { return false }
        await Task.yield()
    }
    return true
}

private func expectTimeout(_ body: () async throws -> Value) async {
    do {
        _ = try await body()
        Issue.record("expected a timeout")
    } catch let error as ExecnetError {
        #expect(error.code == .timeout)
    } catch {
        Issue.record("expected a timeout, got \(error)")
    }
}

@Suite struct TimerQueueTests {
    @Test func timersFireInDeadlineOrderAndACancelledOneLeavesAtOnce() async throws {
        let (io, _) = try makeConnection()
        let fired = Mutex<[Int]>([])
        let start = ContinuousClock.now.advanced(by: .milliseconds(50))
        var handles: [TimerHandle] = []
        // Scheduled out of order; every third one is cancelled before it is due.
        for index in [5, 1, 4, 0, 3, 2, 8, 7, 6] {
            let handle = io.timers.schedule(at: start.advanced(by: .milliseconds(index)), wait: {
                fired.withLock { $0.append(index) }
            })
            handles.append(try #require(handle))
        }
        #expect(io.timers.count == 9)
        for (position, handle) in handles.enumerated() where position % 3 == 0 { handle.cancel() }
        #expect(io.timers.count == 6)
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while fired.withLock({ $0.count }) < 6 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        // Cancelled: 5, 0 and 8.
        #expect(fired.withLock { $0 } == [1, 2, 3, 4, 6, 7])
        #expect(io.timers.count == 0)
        await io.stopAndWait()
    }

    @Test func timedReceivesThatEndEarlyLeaveNoTimerBehind() async throws {
        let (io, connection) = try makeConnection()
        let channel = connection.newChannel()
        let payload = try connection.encode(.int(7))
        let count = 200_000
        let timers = io.timers
        let producer = Task { () -> (peak: Int, fed: Int) in
            var peak = 0
            for fed in 0..<count {
                guard await untilWaiting(channel) else { return (peak, fed) }
                peak = max(peak, timers.count)
                connection.dispatch(WireMessage(channelID: channel.id, type: .data, payload: payload))
            }
            return (peak, count)
        }
        for _ in 0..<count { _ = try await channel.receive(timeout: .seconds(120)) }
        let (peak, fed) = await producer.value
        #expect(fed == count)
        // Each wait had its timer (so this measured timed waits), and each timer left at once.
        #expect(peak == 1)
        #expect(timers.count == 0)
        // (With a sleeping task per timed wait, kept until its deadline, this loop grew the resident
        // set by 143 MiB when run alone; the suite shares the process with others, so the count is
        // what is asserted.)
        await io.stopAndWait()
    }

    @Test func aTimedReceiveOnAChannelOfNoGatewayTimesOut() async throws {
        let channel = Channel(id: 5)
        await expectTimeout { try await channel.receive(timeout: .milliseconds(20)) }
    }

    @Test func timedWaitsOutliveTheirIOThread() async throws {
        let (io, connection) = try makeConnection()
        let channel = connection.newChannel()
        let pending = Task { try await channel.receive(timeout: .milliseconds(300)) }
        #expect(await untilWaiting(channel))
        #expect(io.timers.count == 1)
        await io.stopAndWait()
        // The pending wait's timer went on on the fallback thread; new waits use it too.
        await expectTimeout { try await pending.value }
        await expectTimeout { try await channel.receive(timeout: .milliseconds(20)) }
        #expect(io.timers.count == 0)
    }
}
