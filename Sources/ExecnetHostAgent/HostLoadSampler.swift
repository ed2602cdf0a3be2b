// The host's load for LOAD_REPORT: load averages from /proc/loadavg, CPUs online from sysconf,
// memory from /proc/meminfo. Read on the agent's I/O thread every few seconds: two small reads of
// procfs files, which never block on a disk.

import ExecnetCore
#if canImport(Glibc)
import Glibc
#endif

/// Reads this host's load.
enum HostLoadSampler {
    /// The load now, for the agent named `host`; `nil` if procfs cannot be read or parsed.
    static func sample(host: String) -> LoadReport? {
        guard let averages = readSmallFile("/proc/loadavg").map(parseLoadAverages) ?? nil,
            let memory = readSmallFile("/proc/meminfo").map(parseMemInfo) ?? nil
        else { return nil }
        let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return LoadReport(host: host, load1: averages.0, load5: averages.1, load15: averages.2, cpus: cpus,
                          memoryAvailable: memory.available, memoryTotal: memory.total)
    }

    /// The three load averages at the start of `/proc/loadavg` (`0.52 0.48 0.40 2/812 12345`).
    static func parseLoadAverages(_ text: String) -> (Double, Double, Double)? {
        let fields = text.split(separator: " ", maxSplits: 3)
        guard fields.count >= 3, let one = Double(fields[0]), let five = Double(fields[1]), let fifteen = Double(fields[2])
        else { return nil }
        return (one, five, fifteen)
    }

    /// `MemAvailable` and `MemTotal` of `/proc/meminfo` (`MemTotal:  16316412 kB`), in bytes.
    static func parseMemInfo(_ text: String) -> (available: Int, total: Int)? {
        var available: Int?
        var total: Int?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kibibytes = Int(parts[1]) else { continue }
            let bytes = kibibytes.multipliedReportingOverflow(by: parts.count > 2 && parts[2] == "kB" ? 1024 : 1)
            guard !bytes.overflow else { continue }
            switch parts[0] {
            case "MemTotal:": total = bytes.partialValue
            case "MemAvailable:": available = bytes.partialValue
            default: break
            }
            if available != nil && total != nil { break }
        }
        guard let available, let total else { return nil }
        return (available, total)
    }

    /// A procfs file's text (at most 64 KiB), or `nil`.
    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while bytes.count < 65536 {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 { bytes += buffer[0..<count]; continue }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return nil }
            break
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
