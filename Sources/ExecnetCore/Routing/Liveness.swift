// Heartbeat arithmetic (the zguide's Paranoid Pirate): any traffic from a peer counts as a sign of
// life; a peer that sent nothing for interval × liveness is dead; a side heartbeats only when it
// has sent nothing else for an interval.

/// How often peers heartbeat and how many missed intervals make a peer dead.
public struct LivenessSettings: Sendable, Hashable {
    /// The heartbeat interval: a side that sent nothing for this long sends a heartbeat.
    public var interval: Duration
    /// How many intervals of silence make a peer dead.
    public var liveness: Int

    /// The silence after which a peer is dead: `interval × liveness`.
    public var expiry: Duration { interval * liveness }

    /// Creates settings.
    ///
    /// - Parameters:
    ///   - interval: The heartbeat interval (default 1 s).
    ///   - liveness: Missed intervals before a peer is dead (default 3, so 3 s).
    public init(interval: Duration = .seconds(1), liveness: Int = 3) {
        precondition(liveness >= 1, "liveness must be at least 1")
        precondition(interval > .zero, "the heartbeat interval must be positive")
        self.interval = interval
        self.liveness = liveness
    }

    /// The default: 1 s interval, 3 missed intervals.
    public static let `default` = LivenessSettings()
}

/// One peer's liveness bookkeeping: when it was last heard and when we last sent to it.
package struct PeerLiveness: Sendable {
    /// Silence past this instant means the peer is dead.
    package var expiry: ContinuousClock.Instant
    /// When we last sent it anything.
    package var lastSent: ContinuousClock.Instant

    package init(now: ContinuousClock.Instant, settings: LivenessSettings) {
        expiry = now.advanced(by: settings.expiry)
        lastSent = now
    }

    /// Bookkeeping for a peer that is still starting (a worker process not yet connected): it is
    /// given at least `allowance` before its silence counts, since a process start on a loaded host
    /// can take longer than a liveness window. Its first traffic puts it on the normal expiry.
    package init(starting now: ContinuousClock.Instant, settings: LivenessSettings, allowance: Duration) {
        expiry = now.advanced(by: max(settings.expiry, allowance))
        lastSent = now
    }

    /// Any traffic from the peer refreshes its expiry.
    package mutating func heard(now: ContinuousClock.Instant, settings: LivenessSettings) {
        expiry = now.advanced(by: settings.expiry)
    }

    /// Whether the peer has been silent too long.
    package func isExpired(now: ContinuousClock.Instant) -> Bool { now >= expiry }

    /// Whether we owe it a heartbeat (nothing sent for an interval).
    package func needsHeartbeat(now: ContinuousClock.Instant, settings: LivenessSettings) -> Bool {
        now >= lastSent.advanced(by: settings.interval)
    }
}

/// Notices that this side itself was not running (stopped by SIGSTOP, or its thread held) for
/// longer than a liveness window.
///
/// A peer is judged by the silence seen between our own turns. If our last turn lies further back
/// than the window, the silence we would measure is our own, so the caller starts its counts
/// afresh instead of declaring the peer dead.
package struct SchedulingGap: Sendable {
    private var lastTurn: ContinuousClock.Instant?

    package init() {}

    /// Records a turn at `now`.
    ///
    /// - Returns: The time since the previous turn if it is longer than `window`, else `nil`.
    package mutating func missed(_ window: Duration, now: ContinuousClock.Instant) -> Duration? {
        defer { lastTurn = now }
        guard let lastTurn, lastTurn.duration(to: now) > window else { return nil }
        return lastTurn.duration(to: now)
    }
}
