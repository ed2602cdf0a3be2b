// A host's load in the broker's status, as its agent last reported it (LOAD_REPORT).

import ExecnetCore

extension BrokerStatus {
    /// A host's load as its agent last reported it, checked by the broker.
    ///
    /// Agents report every few seconds (the broker's `--load-report-interval`); a host whose agent
    /// has not reported yet, or that speaks no load reports, has none.
    public struct HostLoad: Codable, Sendable, Equatable {
        /// The 1-minute load average (runnable and uninterruptible tasks, as in `/proc/loadavg`).
        public var loadAverage1: Double
        /// The 5-minute load average.
        public var loadAverage5: Double
        /// The 15-minute load average.
        public var loadAverage15: Double
        /// CPUs online on the host.
        public var cpus: Int
        /// Memory available for new work without swapping (`MemAvailable`), in bytes.
        public var memoryAvailableBytes: Int
        /// The host's total usable memory (`MemTotal`), in bytes.
        public var memoryTotalBytes: Int
        /// Seconds since the broker received this report (when the status was made).
        public var secondsSinceReport: Double

        /// Creates a load value.
        ///
        /// - Parameters:
        ///   - loadAverage1: The 1-minute load average.
        ///   - loadAverage5: The 5-minute load average.
        ///   - loadAverage15: The 15-minute load average.
        ///   - cpus: CPUs online.
        ///   - memoryAvailableBytes: Memory available, in bytes.
        ///   - memoryTotalBytes: Total memory, in bytes.
        ///   - secondsSinceReport: The report's age, in seconds.
        public init(loadAverage1: Double, loadAverage5: Double, loadAverage15: Double, cpus: Int,
                    memoryAvailableBytes: Int, memoryTotalBytes: Int, secondsSinceReport: Double) {
            self.loadAverage1 = loadAverage1
            self.loadAverage5 = loadAverage5
            self.loadAverage15 = loadAverage15
            self.cpus = cpus
            self.memoryAvailableBytes = memoryAvailableBytes
            self.memoryTotalBytes = memoryTotalBytes
            self.secondsSinceReport = secondsSinceReport
        }

        init(_ report: LoadReport, secondsSinceReport: Double) {
            self.init(loadAverage1: report.load1, loadAverage5: report.load5, loadAverage15: report.load15, cpus: report.cpus,
                      memoryAvailableBytes: report.memoryAvailable, memoryTotalBytes: report.memoryTotal,
                      secondsSinceReport: secondsSinceReport)
        }
    }
}
