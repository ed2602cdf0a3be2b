// Metrics through swift-metrics' CoreMetrics. Hot paths count in plain integers (or, where several
// threads count, in relaxed atomics on slow paths only); a publisher turns the counts into CoreMetrics
// calls in batches. With no backend bootstrapped nothing is published, so the cost is the counting.

import CoreMetrics
import Synchronization

/// Counts kept by paths that run on any thread, each only on a slow path (a sender that waits for
/// credit) or beside a lock the path takes anyway (a receive queue's items).
package enum SharedCounters {
    /// Senders that had to wait for flow-control credit.
    package static let creditStalls = Atomic<Int>(0)
    /// Nanoseconds senders spent waiting for flow-control credit.
    package static let creditWaitNanoseconds = Atomic<Int>(0)
    /// Items waiting in receive queues of this process.
    package static let receiveQueued = Atomic<Int>(0)
}

/// Whether a metrics backend was bootstrapped (`MetricsSystem.bootstrap`): without one there is
/// nothing to publish to.
package func metricsBackendIsBootstrapped() -> Bool {
    !(MetricsSystem.factory is NOOPMetricsHandler)
}

/// A CoreMetrics counter fed from a running total: each publish adds what the total grew by.
package struct PublishedCounter {
    private let counter: Counter
    private var published = 0

    /// A counter with this label and dimensions, made by the factory in force now.
    package init(_ label: String, _ dimensions: [(String, String)] = []) {
        counter = Counter(label: label, dimensions: dimensions)
    }

    /// Adds what `total` grew by since the last publish.
    package mutating func publish(_ total: Int) {
        if total > published {
            counter.increment(by: Int64(total - published))
            published = total
        }
    }
}

/// The label names the library records (Prometheus style: `_total` for counters).
package enum MetricNames {
    package static let gatewaysStarted = "execnet_gateways_started_total"
    package static let gatewaysAlive = "execnet_gateways_alive"
    package static let gatewayDeaths = "execnet_gateway_deaths_total"
    package static let channelsOpen = "execnet_channels_open"
    package static let messagesReceived = "execnet_messages_received_total"
    package static let messagesSent = "execnet_messages_sent_total"
    package static let bytesReceived = "execnet_bytes_received_total"
    package static let bytesSent = "execnet_bytes_sent_total"
    package static let creditStalls = "execnet_credit_stalls_total"
    package static let creditWaitNanoseconds = "execnet_credit_wait_nanoseconds_total"
    package static let receiveQueueItems = "execnet_receive_queue_items"
    package static let terminations = "execnet_terminations_total"
}
