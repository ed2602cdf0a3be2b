// The client side of a session with a broker (the zguide's Paranoid Pirate, as execnet's client
// hub, host agents and broker workers speak it), as a state machine with no socket and no clock of
// its own: the role's I/O thread gives it what arrived and the instants its timer fires at, and
// it says what to send or that the broker is lost.
//
// A registering session (a client's link, an agent) says hello and is ready once WELCOME comes;
// until then it says hello again every interval. A session that does not register (a worker the
// broker already knows through its agent) is ready from the start. Any traffic from the broker is
// a sign of life; a broker silent for interval × liveness is lost. A side that has sent nothing for
// an interval heartbeats. If this side itself was not scheduled for a whole window (stopped), its
// counts start afresh and it speaks first, instead of taking its own silence for the broker's.

/// The client side of a session with a broker. See the file comment.
package struct BrokerSession: Sendable {
    /// Where the session stands.
    package enum State: Equatable, Sendable {
        /// A hello was sent at this instant; waiting for WELCOME.
        case connecting(since: ContinuousClock.Instant)
        /// The broker has accepted this side (or the session does not register).
        case ready
        /// The broker was declared lost (silent for the window, or it forgot this side). A
        /// registering role says hello again (``helloSent(now:)``) or ends the session.
        case lost
    }

    /// What the role does after a ``tick(now:)``.
    package enum Action: Equatable, Sendable {
        /// Nothing.
        case none
        /// Say hello (again): no WELCOME came within an interval, or the broker was lost.
        case sendHello
        /// Send a heartbeat: nothing was sent for an interval.
        case sendHeartbeat
        /// The broker has been silent for the window: it is lost (the state is now ``State/lost``).
        case brokerLost
        /// This side was not scheduled for this long, more than the window; counts started afresh.
        /// Speak first (a heartbeat): a broker that forgot this side meanwhile answers UNKNOWN_PEER.
        case resumedAfterPause(Duration)
    }

    /// Whether the session registers (hello, WELCOME) or is ready from the start.
    package let registers: Bool
    package private(set) var state: State
    /// The heartbeat settings: the role's until a WELCOME gives the broker's.
    package private(set) var settings: LivenessSettings
    /// Silence from the broker past this instant means it is lost.
    package private(set) var expiry: ContinuousClock.Instant
    /// When this side last sent the broker anything.
    package private(set) var lastSent: ContinuousClock.Instant
    /// Set when this side's own pause was noticed, until the next WELCOME: an UNKNOWN_PEER then
    /// says the broker forgot this side while it was stopped, not that the broker restarted.
    package private(set) var pausedFor: Duration?
    private var turns = SchedulingGap()

    /// Creates a session at `now`. A registering one is connecting: the role sends its hello now.
    ///
    /// - Parameters:
    ///   - settings: The heartbeat settings until a WELCOME gives the broker's.
    ///   - registers: Whether the session says hello and waits for WELCOME.
    ///   - now: The current instant.
    package init(settings: LivenessSettings, registers: Bool, now: ContinuousClock.Instant) {
        self.settings = settings
        self.registers = registers
        state = registers ? .connecting(since: now) : .ready
        expiry = now.advanced(by: settings.expiry)
        lastSent = now
    }

    /// Whether the broker has accepted this side.
    package var isReady: Bool { state == .ready }

    /// How often the role's timer calls ``tick(now:)``: half an interval, at most 250 ms.
    package var tickPeriod: Duration { min(settings.interval / 2, .milliseconds(250)) }

    // MARK: - Inputs

    /// This side sent the broker something at `now`.
    package mutating func sent(now: ContinuousClock.Instant) {
        lastSent = now
    }

    /// This side said hello at `now`: a registering session waits for WELCOME.
    package mutating func helloSent(now: ContinuousClock.Instant) {
        lastSent = now
        if registers { state = .connecting(since: now) }
    }

    /// Something arrived from the broker at `now` (any message is a sign of life).
    package mutating func heard(now: ContinuousClock.Instant) {
        expiry = now.advanced(by: settings.expiry)
    }

    /// A WELCOME arrived, with the broker's heartbeat settings if it gave valid ones.
    ///
    /// - Returns: Whether it was taken: only a connecting session takes one. Any other (a second
    ///   answer to a repeated hello, a broker's mistake) changes nothing.
    package mutating func welcomed(settings offered: LivenessSettings?, now: ContinuousClock.Instant) -> Bool {
        guard registers, case .connecting = state else { return false }
        if let offered { settings = offered }
        expiry = now.advanced(by: settings.expiry)
        pausedFor = nil
        state = .ready
        return true
    }

    /// The broker answered UNKNOWN_PEER: it does not know this side.
    ///
    /// - Returns: Whether that ends the session (the state is then ``State/lost``): not while
    ///   connecting, when such answers are to what was sent before the hello (the broker answers
    ///   in order, so they come before its WELCOME).
    package mutating func unknownPeer() -> Bool {
        if case .connecting = state { return false }
        state = .lost
        return true
    }

    /// Notices that this side was not scheduled for more than the window since its last turn (a
    /// tick or a batch of input): the counts start afresh. Call it before judging what arrived.
    ///
    /// - Returns: The pause, if there was one; the role then speaks first (a heartbeat).
    package mutating func noticePause(now: ContinuousClock.Instant) -> Duration? {
        guard let gap = turns.missed(settings.expiry, now: now) else { return nil }
        pausedFor = gap
        expiry = now.advanced(by: settings.expiry)
        return gap
    }

    /// The role's timer fired at `now`.
    ///
    /// - Returns: What to do; at most one thing per tick.
    package mutating func tick(now: ContinuousClock.Instant) -> Action {
        if let gap = noticePause(now: now) { return .resumedAfterPause(gap) }
        if state == .lost { return registers ? .sendHello : .none }
        if now >= expiry {
            state = .lost
            expiry = now.advanced(by: settings.expiry)
            return .brokerLost
        }
        if case .connecting(let since) = state, now >= since.advanced(by: settings.interval) { return .sendHello }
        if now >= lastSent.advanced(by: settings.interval) { return .sendHeartbeat }
        return .none
    }
}

extension LivenessSettings {
    /// The broker's heartbeat settings from its WELCOME (`heartbeat_ms`, `liveness`), or `nil` if it
    /// gave none or values out of range (an interval of 1 ms to 24 hours, a liveness of 1 to
    /// 10 000): a broker's mistake never stops this side.
    package init?(welcome: ControlPayload?) {
        guard let milliseconds = welcome?.int("heartbeat_ms"), (1...86_400_000).contains(milliseconds) else { return nil }
        let liveness = welcome?.int("liveness") ?? 3
        guard (1...10_000).contains(liveness) else { return nil }
        self.init(interval: .milliseconds(milliseconds), liveness: Int(liveness))
    }
}
