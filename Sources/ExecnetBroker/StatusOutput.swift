// Rendering a broker status: as a human table, and as JSON through Codable (Foundation's
// JSONEncoder: the executable may import Foundation, the library modules do not).

import ExecnetBrokerServer
import Foundation

/// The status as one line of JSON (keys sorted, as the broker names them).
func statusJSON(_ status: BrokerStatus) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(status), as: UTF8.self)
}

/// A human-readable status table.
func statusTable(_ status: BrokerStatus) -> String {
    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }
    func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
    var lines: [String] = []
    lines.append("broker pid \(status.pid), up \(Int(status.uptimeSeconds.rounded())) s, \(status.clients) clients, \(status.workers) workers, \(status.channels) open channels")
    lines.append("messages in \(status.messagesIn) (\(Int(status.rateIn.rounded()))/s), out \(status.messagesOut) (\(Int(status.rateOut.rounded()))/s)")
    if let inFlight = status.inFlightBytes, let queued = status.queuedBytes, let cap = status.memoryCapBytes {
        lines.append("memory \(mib(inFlight)) in flight + \(mib(queued)) queued, cap \(mib(cap))")
    }
    lines.append("")
    lines.append(pad("HOST", 24) + pad("HOSTNAME", 24) + pad("SLOTS", 8) + pad("WORKERS", 9) + "LOAD 1/5/15 MIN, CPUS, MEMORY AVAILABLE/TOTAL")
    for host in status.hosts {
        lines.append(pad(host.name, 24) + pad(host.hostname, 24) + pad(String(host.slots), 8) + pad(String(host.workers), 9)
                     + loadText(host.load))
    }
    lines.append("")
    lines.append(pad("GATEWAY", 16) + pad("HOST", 24) + pad("PID", 10) + pad("CONNECTED", 11) + "CHANNELS")
    for gateway in status.gateways {
        lines.append(pad(gateway.gateway, 16) + pad(gateway.host, 24) + pad(String(gateway.pid), 10)
                     + pad(gateway.connected ? "yes" : "no", 11) + String(gateway.channels))
    }
    return lines.joined(separator: "\n")
}

/// A host's load for the table: `0.52 0.48 0.40, 8 CPUs, 3.1/15.5 GiB (2 s ago)`, or `-` without a report.
func loadText(_ load: BrokerStatus.HostLoad?) -> String {
    guard let load else { return "-" }
    func gib(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_073_741_824) }
    return String(format: "%.2f %.2f %.2f", load.loadAverage1, load.loadAverage5, load.loadAverage15)
        + ", \(load.cpus) CPUs, \(gib(load.memoryAvailableBytes))/\(gib(load.memoryTotalBytes)) GiB"
        + " (\(Int(load.secondsSinceReport.rounded())) s ago)"
}
