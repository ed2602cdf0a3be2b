// The broker's metrics (swift-metrics' CoreMetrics), published from the liveness tick about once a
// second, and only when a metrics backend was bootstrapped: the forwarding path counts in the plain
// integers it already keeps (messagesIn, messagesOut) and pays nothing more.
//
// Dimensions: a host's agent name, and a client's key by fingerprint (never the key itself).

import CoreMetrics
import ExecnetCore

/// A short fingerprint of a public key for metric labels and logs: `key:` and 12 hex digits of its
/// FNV-1a hash; `anonymous` for the empty key of a broker without CURVE. Not the key: a label is read
/// by anyone who can scrape.
package func keyFingerprint(_ key: [UInt8]) -> String {
    guard !key.isEmpty else { return "anonymous" }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in key {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    let hex = String(hash >> 16, radix: 16)
    return "key:" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
}

/// The broker's metric names.
package enum BrokerMetricNames {
    package static let messagesReceived = "execnet_broker_messages_received_total"
    package static let messagesSent = "execnet_broker_messages_sent_total"
    package static let clients = "execnet_broker_clients"
    package static let agents = "execnet_broker_agents"
    package static let workers = "execnet_broker_workers"
    package static let channelsOpen = "execnet_broker_channels_open"
    package static let hostSlots = "execnet_broker_host_slots"
    package static let hostWorkers = "execnet_broker_host_workers"
    package static let clientGateways = "execnet_broker_client_gateways"
    package static let inFlightBytes = "execnet_broker_in_flight_bytes"
    package static let queuedBytes = "execnet_broker_queued_bytes"
    package static let memoryCapBytes = "execnet_broker_memory_cap_bytes"
    package static let ledgerChannels = "execnet_broker_ledger_channels"
    // Per host, from its agent's load reports.
    package static let hostLoad1 = "execnet_broker_host_load1"
    package static let hostLoad5 = "execnet_broker_host_load5"
    package static let hostLoad15 = "execnet_broker_host_load15"
    package static let hostCPUs = "execnet_broker_host_cpus"
    package static let hostMemoryAvailable = "execnet_broker_host_memory_available_bytes"
    package static let hostMemoryTotal = "execnet_broker_host_memory_total_bytes"
    package static let hostLoadReportAge = "execnet_broker_host_load_report_age_seconds"
}

/// Publishes the broker's state. Used on the broker's I/O thread only; the metric objects are
/// made at the first publish, by the factory in force then, and kept.
final class BrokerMetricsPublisher {
    private struct Handles {
        var messagesReceived = PublishedCounter(BrokerMetricNames.messagesReceived)
        var messagesSent = PublishedCounter(BrokerMetricNames.messagesSent)
        let clients = Gauge(label: BrokerMetricNames.clients)
        let agents = Gauge(label: BrokerMetricNames.agents)
        let workers = Gauge(label: BrokerMetricNames.workers)
        let channels = Gauge(label: BrokerMetricNames.channelsOpen)
        let inFlight = Gauge(label: BrokerMetricNames.inFlightBytes)
        let queued = Gauge(label: BrokerMetricNames.queuedBytes)
        let cap = Gauge(label: BrokerMetricNames.memoryCapBytes)
        let ledgerChannels = Gauge(label: BrokerMetricNames.ledgerChannels)
        var hostSlots: [String: Gauge] = [:]
        var hostWorkers: [String: Gauge] = [:]
        var clientGateways: [String: Gauge] = [:]
        /// Per host and load metric name (`hostLoadLabels`).
        var hostLoad: [String: [String: Gauge]] = [:]
    }

    private static let hostLoadLabels = [
        BrokerMetricNames.hostLoad1, BrokerMetricNames.hostLoad5, BrokerMetricNames.hostLoad15, BrokerMetricNames.hostCPUs,
        BrokerMetricNames.hostMemoryAvailable, BrokerMetricNames.hostMemoryTotal, BrokerMetricNames.hostLoadReportAge,
    ]

    private var handles: Handles?
    private var lastPublished: ContinuousClock.Instant?

    /// Publishes if a second has passed since the last publish (and a backend was bootstrapped).
    func publishIfDue(_ broker: Broker, now: ContinuousClock.Instant) {
        if let lastPublished, lastPublished.duration(to: now) < .seconds(1) { return }
        lastPublished = now
        guard handles != nil || metricsBackendIsBootstrapped() else { return }
        var h = handles ?? Handles()
        h.messagesReceived.publish(broker.messagesIn)
        h.messagesSent.publish(broker.messagesOut)
        let table = broker.table
        h.clients.record(table.clients.count)
        h.agents.record(table.agents.count)
        h.workers.record(table.workers.count)
        h.channels.record(table.workers.values.reduce(0) { $0 + $1.openChannels.count })
        h.inFlight.record(broker.flow.inFlightBytes)
        h.queued.record(broker.outbox?.queuedBytes ?? 0)
        h.cap.record(broker.configuration.limits.maxInFlightBytes)
        h.ledgerChannels.record(broker.flow.channels.count)
        // Per host: a host that left keeps its series at zero (its label stays known).
        var slots: [String: Int] = [:]
        var running: [String: Int] = [:]
        for agent in table.agents.values {
            slots[agent.name, default: 0] += agent.slots
            running[agent.name, default: 0] += agent.workers.count
        }
        for name in Set(slots.keys).union(h.hostSlots.keys) {
            gauge(&h.hostSlots, BrokerMetricNames.hostSlots, "host", name).record(slots[name] ?? 0)
            gauge(&h.hostWorkers, BrokerMetricNames.hostWorkers, "host", name).record(running[name] ?? 0)
        }
        publishHostLoads(table, &h, now: now)
        var gateways: [String: Int] = [:]
        for client in table.clients.values { gateways[keyFingerprint(client.key), default: 0] += 0 }
        for worker in table.workers.values { gateways[keyFingerprint(worker.ownerKey), default: 0] += 1 }
        for client in Set(gateways.keys).union(h.clientGateways.keys) {
            gauge(&h.clientGateways, BrokerMetricNames.clientGateways, "client", client).record(gateways[client] ?? 0)
        }
        handles = h
    }

    /// Per host, its last load report (the newest of agents sharing a name); a host that left
    /// keeps its series at zero.
    private func publishHostLoads(_ table: RoutingTable, _ h: inout Handles, now: ContinuousClock.Instant) {
        var newest: [String: (report: LoadReport, received: ContinuousClock.Instant)] = [:]
        for agent in table.agents.values {
            guard let load = agent.load else { continue }
            if let known = newest[agent.name], known.received > load.received { continue }
            newest[agent.name] = load
        }
        for name in Set(newest.keys).union(h.hostLoad.keys) {
            var values = [Double](repeating: 0, count: Self.hostLoadLabels.count)
            if let (report, received) = newest[name] {
                values = [report.load1, report.load5, report.load15, Double(report.cpus), Double(report.memoryAvailable),
                          Double(report.memoryTotal), received.duration(to: now).seconds]
            }
            var gauges = h.hostLoad[name] ?? [:]
            for (label, value) in zip(Self.hostLoadLabels, values) {
                gauge(&gauges, label, "host", name, key: label).record(value)
            }
            h.hostLoad[name] = gauges
        }
    }

    private func gauge(_ cache: inout [String: Gauge], _ label: String, _ dimension: String, _ value: String, key: String) -> Gauge {
        if let gauge = cache[key] { return gauge }
        let gauge = Gauge(label: label, dimensions: [(dimension, value)])
        cache[key] = gauge
        return gauge
    }

    private func gauge(_ cache: inout [String: Gauge], _ label: String, _ dimension: String, _ value: String) -> Gauge {
        if let gauge = cache[value] { return gauge }
        let gauge = Gauge(label: label, dimensions: [(dimension, value)])
        cache[value] = gauge
        return gauge
    }
}
