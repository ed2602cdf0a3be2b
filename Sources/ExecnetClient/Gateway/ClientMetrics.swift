// The client's metrics (swift-metrics' CoreMetrics). The hub counts messages and bytes in plain
// integers on the I/O thread; gateway lifecycle events, which are rare, count in atomics; once a
// second, and only when a metrics backend was bootstrapped, the hub publishes the counts in one batch.

import CoreMetrics
import ExecnetCore
import Synchronization

/// Rare events of the client process, counted from any thread.
final class ClientCounters: Sendable {
    /// Gateways whose worker said hello.
    let gatewaysStarted = Atomic<Int>(0)
    /// Worker deaths by cause (`exited`, `failed`, a signal's name, `unresponsive`, `heartbeat_lost`).
    let deaths = Mutex<[String: Int]>([:])
    /// Outcomes of ``Group/terminate(timeout:)`` per gateway (`exited`, `killed`, `still_running`).
    let terminations = Mutex<[String: Int]>([:])

    /// Counts a worker's death under its cause.
    func recordDeath(_ exit: WorkerExit, unresponsive: Bool) {
        let cause: String
        if unresponsive {
            cause = "unresponsive"
        } else {
            switch exit {
            case .exited(0): cause = "exited"
            case .exited: cause = "failed"
            case .signaled(let signal): cause = signalName(signal)
            case .heartbeatLost: cause = "heartbeat_lost"
            }
        }
        deaths.withLock { $0[cause, default: 0] += 1 }
    }

    /// Counts one gateway's terminate outcome.
    func recordTermination(_ outcome: String) {
        terminations.withLock { $0[outcome, default: 0] += 1 }
    }
}

/// Messages and bytes through the hub, counted on the I/O thread only.
final class HubTraffic {
    var messagesReceived = 0
    var bytesReceived = 0
    var messagesSent = 0
    var bytesSent = 0

    /// Counts a message received from a worker.
    @inline(__always) func received(_ payloadBytes: Int) {
        messagesReceived &+= 1
        bytesReceived &+= payloadBytes
    }

    /// Counts a message sent to a worker.
    @inline(__always) func sent(_ payloadBytes: Int) {
        messagesSent &+= 1
        bytesSent &+= payloadBytes
    }
}

/// Turns the client's counts into CoreMetrics calls. Used on the I/O thread only.
///
/// The metric objects are made at the first publish, by the factory in force then, and kept.
final class ClientMetricsPublisher {
    private struct Handles {
        var started = PublishedCounter(MetricNames.gatewaysStarted)
        var messagesReceived = PublishedCounter(MetricNames.messagesReceived)
        var bytesReceived = PublishedCounter(MetricNames.bytesReceived)
        var messagesSent = PublishedCounter(MetricNames.messagesSent)
        var bytesSent = PublishedCounter(MetricNames.bytesSent)
        var creditStalls = PublishedCounter(MetricNames.creditStalls)
        var creditWait = PublishedCounter(MetricNames.creditWaitNanoseconds)
        var deaths: [String: PublishedCounter] = [:]
        var terminations: [String: PublishedCounter] = [:]
        let alive = Gauge(label: MetricNames.gatewaysAlive)
        let channels = Gauge(label: MetricNames.channelsOpen)
        let receiveQueue = Gauge(label: MetricNames.receiveQueueItems)
    }

    private var handles: Handles?

    /// Publishes the counts, unless no metrics backend was bootstrapped.
    ///
    /// - Parameters:
    ///   - gatewaysAlive: Gateways with a worker now.
    ///   - channelsOpen: Channels registered on those gateways.
    func publish(counters: ClientCounters, traffic: HubTraffic, gatewaysAlive: Int, channelsOpen: Int) {
        guard handles != nil || metricsBackendIsBootstrapped() else { return }
        var h = handles ?? Handles()
        h.started.publish(counters.gatewaysStarted.load(ordering: .relaxed))
        h.messagesReceived.publish(traffic.messagesReceived)
        h.bytesReceived.publish(traffic.bytesReceived)
        h.messagesSent.publish(traffic.messagesSent)
        h.bytesSent.publish(traffic.bytesSent)
        h.creditStalls.publish(SharedCounters.creditStalls.load(ordering: .relaxed))
        h.creditWait.publish(SharedCounters.creditWaitNanoseconds.load(ordering: .relaxed))
        for (cause, total) in counters.deaths.withLock({ $0 }) {
            h.deaths[cause, default: PublishedCounter(MetricNames.gatewayDeaths, [("cause", cause)])].publish(total)
        }
        for (outcome, total) in counters.terminations.withLock({ $0 }) {
            h.terminations[outcome, default: PublishedCounter(MetricNames.terminations, [("outcome", outcome)])]
                .publish(total)
        }
        h.alive.record(gatewaysAlive)
        h.channels.record(channelsOpen)
        h.receiveQueue.record(max(0, SharedCounters.receiveQueued.load(ordering: .relaxed)))
        handles = h
    }
}
