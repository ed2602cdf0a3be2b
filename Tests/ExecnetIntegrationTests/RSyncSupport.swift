// Helpers of the RSync tests: temporary trees of real files, reading them back, a progress
// recorder, and the resident memory of a process.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A new empty directory under /tmp.
func makeTemporaryDirectory(_ label: String) -> String {
    var template = Array("/tmp/execnet-rsync-\(label)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed")
    return String(cString: made!)
}

/// Removes `path` and everything in it (links are removed, never followed).
func removeRSyncTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if st.st_mode & 0o170000 == 0o040000 {
        chmod(path, 0o700)
        if let stream = opendir(path) {
            var names: [String] = []
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(stream)
            for name in names { removeRSyncTree(path + "/" + name) }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// Writes `bytes` to `path` with `mode`, and sets its modification time if given.
func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, mtime: Int64? = nil) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    precondition(fd >= 0, "cannot create \(path)")
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let count = write(fd, raw.baseAddress! + offset, raw.count - offset)
            precondition(count > 0)
            offset += count
        }
    }
    fchmod(fd, mode)
    close(fd)
    if let mtime { setModificationTime(path, mtime) }
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644, mtime: Int64? = nil) {
    writeFile(path, Array(text.utf8), mode: mode, mtime: mtime)
}

/// Sets the modification (and access) time of `path` (not following a link) in nanoseconds.
func setModificationTime(_ path: String, _ nanoseconds: Int64) {
    let time = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    let times = [time, time]
    utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW)
}

/// The bytes of the file at `path`, or `nil`.
func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_NOFOLLOW)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}

func readText(_ path: String) -> String? {
    readFile(path).map { String(decoding: $0, as: UTF8.self) }
}

/// `lstat` of `path`, or `nil` if it does not exist.
func fileStatus(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

/// The modification time of `path` (not following a link) in nanoseconds.
func modificationTime(_ path: String) -> Int64? {
    fileStatus(path).map { Int64($0.st_mtim.tv_sec) * 1_000_000_000 + Int64($0.st_mtim.tv_nsec) }
}

/// The target of the link at `path`.
func linkTarget(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let count = readlink(path, &buffer, 4096)
    guard count >= 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The names in the directory `path`, sorted.
func directoryNames(_ path: String) -> [String] {
    guard let stream = opendir(path) else { return [] }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Every progress report of a send, kept for the test to check.
final class ProgressRecorder: Sendable {
    private let reports = Mutex<[RSyncProgress]>([])

    var callback: @Sendable (RSyncProgress) -> Void {
        { report in self.reports.withLock { $0.append(report) } }
    }

    var all: [RSyncProgress] { reports.withLock { $0 } }

    /// The last report of `target`'s transfer.
    func last(_ target: RSync.Target) -> RSyncProgress? { all.last { $0.target == target } }

    /// The content bytes sent to every target together.
    var bytesSent: Int64 {
        var last: [RSync.Target: Int64] = [:]
        for report in all { last[report.target] = report.bytesSent }
        return last.values.reduce(0, +)
    }
}

/// A field of /proc/`pid`/status in KiB (`VmRSS`, `VmHWM`).
func memoryKiB(_ pid: Int32, _ field: String) -> Int? {
    guard let text = readText("/proc/\(pid)/status") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init)?
            .trimmingCharacters(in: " \t") ?? "")
    }
    return nil
}

/// Resets the peak resident size (`VmHWM`) of `pid` to its current size.
func resetPeakMemory(_ pid: Int32) -> Bool {
    let fd = open("/proc/\(pid)/clear_refs", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return write(fd, "5", 1) == 1
}

/// Expects `body` to throw an ``RSyncSendError`` whose failures have exactly `codes`, in target order.
func expectRSyncFailures(_ codes: [RSyncError.Code], sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () async throws -> Void) async -> RSyncSendError? {
    do {
        try await body()
        Issue.record("expected RSync failures \(codes), the send succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as RSyncSendError {
        #expect(error.failures.map(\.code) == codes, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected RSync failures \(codes), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
