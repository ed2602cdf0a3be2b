// The client side of a broker session (hub links, agents, broker workers) with plain instants: no
// socket, no sleep, no clock read in the assertions.

import Execnet
@testable import ExecnetCore
import Testing

@Suite struct BrokerSessionTests {
    let start = ContinuousClock.now
    /// 1 s interval, 3 missed intervals.
    let settings = LivenessSettings(interval: .seconds(1), liveness: 3)

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start.advanced(by: .milliseconds(milliseconds)) }

    /// A registering session that said hello at 0 and was welcomed at 0.
    func readySession() -> BrokerSession {
        var session = BrokerSession(settings: settings, registers: true, now: at(0))
        let taken = session.welcomed(settings: nil, now: at(0))
        #expect(taken)
        return session
    }

    /// Ticks every 250 ms from `from` to `to` (inclusive), doing what each action asks: a hello or
    /// a heartbeat is sent; the broker, if `answers`, answers each at once. Returns the actions
    /// with their instants.
    func run(_ session: inout BrokerSession, from: Int, to: Int, answers: Bool) -> [(Int, BrokerSession.Action)] {
        var actions: [(Int, BrokerSession.Action)] = []
        for milliseconds in stride(from: from, through: to, by: 250) {
            let action = session.tick(now: at(milliseconds))
            switch action {
            case .sendHeartbeat, .resumedAfterPause:
                session.sent(now: at(milliseconds))
                if answers { session.heard(now: at(milliseconds)) }
            case .sendHello:
                session.helloSent(now: at(milliseconds))
            case .none, .brokerLost:
                break
            }
            if action != .none { actions.append((milliseconds, action)) }
        }
        return actions
    }

    @Test func anIdleSessionHeartbeatsOncePerInterval() {
        var session = readySession()
        let actions = run(&session, from: 250, to: 10_000, answers: true)
        #expect(actions.map(\.1) == Array(repeating: .sendHeartbeat, count: 10))
        #expect(actions.map(\.0) == Array(stride(from: 1_000, through: 10_000, by: 1_000)))
        #expect(session.isReady)
    }

    @Test func anySendPostponesTheHeartbeat() {
        var session = readySession()
        session.heard(now: at(900))
        session.sent(now: at(900))
        let action1 = session.tick(now: at(1_000))
        #expect(action1 == .none)
        let action2 = session.tick(now: at(1_750))
        #expect(action2 == .none)
        let action3 = session.tick(now: at(1_900))
        #expect(action3 == .sendHeartbeat)
    }

    @Test func aBrokerSilentForLivenessIntervalsIsLostOnceAndHelloFollows() {
        var session = readySession()
        let actions = run(&session, from: 250, to: 3_250, answers: false)
        // Two heartbeats go unanswered; at 3 s (1 s × 3) the broker is lost, once; the next tick
        // says hello again.
        #expect(actions.map(\.1) == [.sendHeartbeat, .sendHeartbeat, .brokerLost, .sendHello])
        #expect(actions.map(\.0) == [1_000, 2_000, 3_000, 3_250])
        #expect(session.state == .connecting(since: at(3_250)))
    }

    @Test func anyTrafficFromTheBrokerKeepsItAlive() {
        var session = readySession()
        session.heard(now: at(2_900))
        let action1 = session.tick(now: at(3_000))
        #expect(action1 != .brokerLost)
        let action2 = session.tick(now: at(5_800))
        #expect(action2 != .brokerLost)
        let action3 = session.tick(now: at(5_900))
        #expect(action3 == .brokerLost)
    }

    @Test func withoutWelcomeHelloIsRepeatedEachInterval() {
        var session = BrokerSession(settings: settings, registers: true, now: at(0))
        #expect(session.state == .connecting(since: at(0)))
        let actions = run(&session, from: 250, to: 2_750, answers: false)
        #expect(actions.map(\.1) == [.sendHello, .sendHello])
        #expect(actions.map(\.0) == [1_000, 2_000])
        #expect(!session.isReady)
    }

    @Test func welcomeMakesItReadyWithTheBrokersSettings() {
        var session = BrokerSession(settings: settings, registers: true, now: at(0))
        let brokers = LivenessSettings(interval: .milliseconds(200), liveness: 5)
        let taken = session.welcomed(settings: brokers, now: at(100))
        #expect(taken)
        #expect(session.isReady)
        #expect(session.settings == brokers)
        #expect(session.tickPeriod == .milliseconds(100))
        // Lost after 200 ms × 5 of silence from the welcome.
        let action1 = session.tick(now: at(1_099))
        #expect(action1 != .brokerLost)
        let action2 = session.tick(now: at(1_100))
        #expect(action2 == .brokerLost)
    }

    @Test func aWelcomeInTheWrongStateIsIgnored() {
        // Ready: a second welcome (to a repeated hello) changes nothing.
        var ready = readySession()
        let taken1 = ready.welcomed(settings: LivenessSettings(interval: .milliseconds(10), liveness: 1), now: at(500))
        #expect(!taken1)
        #expect(ready.settings == settings)
        #expect(ready.isReady)
        // Lost, before the role said hello again.
        var lost = readySession()
        let forgotten = lost.unknownPeer()
        #expect(forgotten)
        let taken2 = lost.welcomed(settings: nil, now: at(500))
        #expect(!taken2)
        #expect(lost.state == .lost)
        // A session that does not register has nothing to be welcomed for.
        var worker = BrokerSession(settings: settings, registers: false, now: at(0))
        let taken3 = worker.welcomed(settings: LivenessSettings(interval: .milliseconds(10), liveness: 1), now: at(500))
        #expect(!taken3)
        #expect(worker.settings == settings)
    }

    @Test func unknownPeerWhileReadyMeansHelloAgainAndWelcomeAgain() {
        var session = readySession()
        let forgotten1 = session.unknownPeer()
        #expect(forgotten1)
        #expect(session.state == .lost)
        let action = session.tick(now: at(250))
        #expect(action == .sendHello)
        session.helloSent(now: at(250))
        #expect(session.state == .connecting(since: at(250)))
        // More UNKNOWN_PEERs answer what was sent before the new hello: ignored.
        let forgotten2 = session.unknownPeer()
        #expect(!forgotten2)
        let taken = session.welcomed(settings: nil, now: at(300))
        #expect(taken)
        #expect(session.isReady)
    }

    @Test func aSessionThatDoesNotRegisterIsReadyAndEndsWhenLost() {
        var session = BrokerSession(settings: settings, registers: false, now: at(0))
        #expect(session.isReady)
        let actions = run(&session, from: 250, to: 5_000, answers: false)
        #expect(actions.map(\.1) == [.sendHeartbeat, .sendHeartbeat, .brokerLost])
        #expect(session.state == .lost)
        // It never says hello; an UNKNOWN_PEER ends it too.
        var other = BrokerSession(settings: settings, registers: false, now: at(0))
        let forgotten = other.unknownPeer()
        #expect(forgotten)
    }

    @Test func aPauseOfThisSideRestartsTheCountsInsteadOfLosingTheBroker() {
        var session = readySession()
        let action1 = session.tick(now: at(250))
        #expect(action1 == .none)
        // Stopped for 10 s: the broker's silence meanwhile is ours.
        let action2 = session.tick(now: at(10_250))
        #expect(action2 == .resumedAfterPause(.seconds(10)))
        #expect(session.pausedFor == .seconds(10))
        #expect(session.isReady)
        session.sent(now: at(10_250))
        let action3 = session.tick(now: at(10_500))
        #expect(action3 == .none)
        // Counted afresh from the resumption.
        let action4 = session.tick(now: at(13_249))
        #expect(action4 != .brokerLost)
        let action5 = session.tick(now: at(13_250))
        #expect(action5 == .brokerLost)
    }

    @Test func aPauseNoticedByInputIsJudgedBeforeThatInput() {
        var session = readySession()
        let action = session.tick(now: at(250))
        #expect(action == .none)
        let pause = session.noticePause(now: at(9_000))
        #expect(pause == .milliseconds(8_750))
        // The UNKNOWN_PEER that came with it says the broker forgot this side while it was stopped.
        let forgotten = session.unknownPeer()
        #expect(forgotten)
        #expect(session.pausedFor == .milliseconds(8_750))
        session.helloSent(now: at(9_000))
        let taken = session.welcomed(settings: nil, now: at(9_100))
        #expect(taken)
        #expect(session.pausedFor == nil)
    }

    @Test func welcomeSettingsOutOfRangeAreRefused() {
        func welcome(_ fields: [String: Int64]) -> ControlPayload {
            var payload = ControlPayload()
            for (key, value) in fields { payload[key] = .int(value) }
            return payload
        }
        #expect(LivenessSettings(welcome: welcome(["heartbeat_ms": 500, "liveness": 4]))
            == LivenessSettings(interval: .milliseconds(500), liveness: 4))
        #expect(LivenessSettings(welcome: welcome(["heartbeat_ms": 500])) == LivenessSettings(interval: .milliseconds(500), liveness: 3))
        #expect(LivenessSettings(welcome: nil) == nil)
        #expect(LivenessSettings(welcome: welcome([:])) == nil)
        for bad in [["heartbeat_ms": 0], ["heartbeat_ms": -1], ["heartbeat_ms": .max],
                    ["heartbeat_ms": 500, "liveness": 0], ["heartbeat_ms": 500, "liveness": -3],
                    ["heartbeat_ms": 500, "liveness": .max]] as [[String: Int64]] {
            #expect(LivenessSettings(welcome: welcome(bad)) == nil, "\(bad)")
        }
        var text = ControlPayload()
        text["heartbeat_ms"] = .string("500")
        #expect(LivenessSettings(welcome: text) == nil)
    }
}
