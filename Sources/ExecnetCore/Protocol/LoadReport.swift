// LOAD_REPORT (docs/PROTOCOL.md, "Load reports"): an agent tells the broker its host's load. The
// payload as a value, its encoding, and the broker's validation of what an agent claims: a hostile
// or broken agent may send anything, so every field is checked and clamped here, in one place.

import ExecnetValue

/// A host's load as an agent reports it: load averages, CPUs, memory.
package struct LoadReport: Sendable, Equatable {
    /// The agent's name (a report for another host is refused).
    package var host: String
    /// The 1-, 5- and 15-minute load averages (`/proc/loadavg`).
    package var load1: Double
    package var load5: Double
    package var load15: Double
    /// CPUs online (`sysconf(_SC_NPROCESSORS_ONLN)`).
    package var cpus: Int
    /// `MemAvailable` and `MemTotal` of `/proc/meminfo`, in bytes.
    package var memoryAvailable: Int
    package var memoryTotal: Int

    /// The largest load average the broker keeps; a larger finite claim is clamped to it.
    package static let maximumLoad = 1_000_000.0
    /// The most CPUs the broker keeps; more are clamped to it.
    package static let maximumCPUs = 1 << 20
    /// The most memory the broker keeps (1 EiB); more is clamped to it.
    package static let maximumMemory = 1 << 60
    /// The largest payload the broker decodes as a report (an honest one is about 120 bytes).
    package static let maximumPayloadSize = 4096
    /// The interval a broker may ask for in its WELCOME (`load_report_ms`); outside it an agent
    /// sends no reports.
    package static let intervalRange: ClosedRange<Int64> = 100...3_600_000

    package init(host: String, load1: Double, load5: Double, load15: Double, cpus: Int, memoryAvailable: Int, memoryTotal: Int) {
        self.host = host
        self.load1 = load1
        self.load5 = load5
        self.load15 = load15
        self.cpus = cpus
        self.memoryAvailable = memoryAvailable
        self.memoryTotal = memoryTotal
    }

    /// The payload: a dict with text keys.
    package var encoded: [UInt8] {
        var payload = ControlPayload()
        payload["host"] = .string(host)
        payload["load1"] = .float(load1)
        payload["load5"] = .float(load5)
        payload["load15"] = .float(load15)
        payload["cpus"] = .int(Int64(cpus))
        payload["memory_available"] = .int(Int64(memoryAvailable))
        payload["memory_total"] = .int(Int64(memoryTotal))
        return payload.encoded
    }

    /// Decodes and checks a report an agent sent.
    ///
    /// A field that is missing, of another kind, not finite or negative refuses the whole report; a
    /// finite value past its maximum is clamped to it, and available memory to the total.
    ///
    /// - Parameters:
    ///   - payload: The LOAD_REPORT payload.
    ///   - host: The name the sending agent registered with.
    /// - Throws: ``LoadReportError`` naming the problem.
    package init(validating payload: [UInt8], from host: String) throws(LoadReportError) {
        guard payload.count <= Self.maximumPayloadSize else { throw .tooLarge(payload.count) }
        guard let fields = ControlPayload(decoding: payload) else { throw .notADict }
        guard let claimed = fields.string("host") else { throw .badField("host") }
        guard claimed == host else { throw .otherHost(claimed) }
        func load(_ key: String) throws(LoadReportError) -> Double {
            let value: Double
            switch fields[key] {
            case .float(let number)?: value = number
            case .int(let number)?: value = Double(number)
            default: throw .badField(key)
            }
            guard value.isFinite, value >= 0 else { throw .badField(key) }
            return min(value, Self.maximumLoad)
        }
        func count(_ key: String, maximum: Int) throws(LoadReportError) -> Int {
            guard let value = fields.int(key), value >= 0 else { throw .badField(key) }
            return Int(min(value, Int64(maximum)))
        }
        self.host = host
        load1 = try load("load1")
        load5 = try load("load5")
        load15 = try load("load15")
        cpus = try count("cpus", maximum: Self.maximumCPUs)
        guard cpus > 0 else { throw .badField("cpus") }
        memoryTotal = try count("memory_total", maximum: Self.maximumMemory)
        memoryAvailable = min(try count("memory_available", maximum: Self.maximumMemory), memoryTotal)
    }
}

/// Why the broker refused a load report.
package enum LoadReportError: Error, Equatable, CustomStringConvertible {
    /// The payload is larger than ``LoadReport/maximumPayloadSize``.
    case tooLarge(Int)
    /// The payload is not a dict.
    case notADict
    /// A field is missing, of the wrong kind, not finite, or negative (no CPUs).
    case badField(String)
    /// The report names a host other than the sender's.
    case otherHost(String)

    package var description: String {
        switch self {
        case .tooLarge(let size): "a load report of \(size) bytes (at most \(LoadReport.maximumPayloadSize))"
        case .notADict: "a load report that is not a dict"
        case .badField(let key): "a load report whose '\(key)' is missing, of the wrong kind, not finite or negative"
        case .otherHost(let name): "a load report for host '\(name)', which is not the sender's"
        }
    }
}
