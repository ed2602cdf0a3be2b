// Progress of a group.map: counts the engine updates as inputs are taken, finished and retried,
// and an AsyncSequence of snapshots for whoever watches (a progress line, a metrics exporter).

import Synchronization

/// Counts of a running ``TaskMap``, at one moment.
public struct MapProgressSnapshot: Sendable, Hashable, CustomStringConvertible {
    /// Inputs that finished with an output.
    public var succeeded = 0
    /// Inputs that finished with a failure.
    public var failed = 0
    /// Calls running in workers now.
    public var inFlight = 0
    /// Times an input was requeued because its worker was lost.
    public var retried = 0
    /// Lost gateways the map replaced with new ones.
    public var replaced = 0
    /// Time since the map started.
    public var elapsed: Duration = .zero
    /// Whether the map has ended (every result produced, or cancelled).
    public var isFinished = false

    /// Inputs finished either way.
    public var done: Int { succeeded + failed }

    /// Finished inputs per second since the start (0 before any time has passed).
    public var rate: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return seconds > 0 ? Double(done) / seconds : 0
    }

    public var description: String {
        let rateText = String(Int(rate.rounded()))
        return "done \(done) (failed \(failed)), in flight \(inFlight), retried \(retried), \(rateText)/s"
    }
}

/// The progress of a ``TaskMap``, as snapshots.
///
/// Counts belong to the map's latest iteration (iterating a ``TaskMap`` again starts over).
public final class MapProgress: Sendable {
    private struct State {
        var snapshot = MapProgressSnapshot()
        var started: ContinuousClock.Instant?
        var watchers: [Int: AsyncStream<MapProgressSnapshot>.Continuation] = [:]
        var nextWatcher = 0
    }
    private let state = Mutex(State())

    init() {}

    /// The counts now.
    public var current: MapProgressSnapshot {
        state.withLock { state in
            var snapshot = state.snapshot
            if let started = state.started, !snapshot.isFinished { snapshot.elapsed = started.duration(to: .now) }
            return snapshot
        }
    }

    /// Snapshots after every change, newest only (a slow watcher skips intermediate ones, never
    /// holds the map back), ending after the map's final snapshot.
    ///
    /// - Returns: The stream of snapshots; its first element is the current one.
    public func updates() -> AsyncStream<MapProgressSnapshot> {
        let (stream, continuation) = AsyncStream.makeStream(of: MapProgressSnapshot.self, bufferingPolicy: .bufferingNewest(1))
        let (id, snapshot) = state.withLock { state in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = continuation
            return (id, state.snapshot)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        continuation.yield(snapshot)
        if snapshot.isFinished { continuation.finish() }
        return stream
    }

    /// Starts counting anew.
    func start() {
        update { snapshot in snapshot = MapProgressSnapshot() }
        state.withLock { $0.started = .now }
    }

    /// Changes the counts and tells the watchers.
    func update(_ change: (inout MapProgressSnapshot) -> Void) {
        let (snapshot, watchers) = state.withLock { state in
            change(&state.snapshot)
            if let started = state.started { state.snapshot.elapsed = started.duration(to: .now) }
            return (state.snapshot, Array(state.watchers.values))
        }
        for watcher in watchers {
            watcher.yield(snapshot)
            if snapshot.isFinished { watcher.finish() }
        }
    }
}
