// Reading and writing small text files (key files, allow-lists) without Foundation.

#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole small file as UTF-8 text.
///
/// - Throws: ``ExecnetError`` `invalidSpec` naming the path if it cannot be read.
func readTextFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        throw ExecnetError(.invalidSpec, "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count > 0 { bytes += buffer[0..<count]; continue }
        if count < 0 && errno == EINTR { continue }
        if count < 0 { throw ExecnetError(.invalidSpec, "cannot read \(path): \(String(cString: strerror(errno)))") }
        break
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes a text file with the given mode, replacing it only if `overwrite` is set.
///
/// - Throws: ``ExecnetError`` `invalidState` if it exists and `overwrite` is false, `transport` otherwise.
func writeTextFile(_ path: String, _ text: String, mode: mode_t, overwrite: Bool) throws {
    let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL)
    let fd = open(path, flags, mode)
    guard fd >= 0 else {
        if errno == EEXIST { throw ExecnetError(.invalidState, "\(path) exists; not overwriting it") }
        throw ExecnetError(.transport, "cannot write \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    _ = fchmod(fd, mode)
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { throw ExecnetError(.transport, "cannot write \(path): \(String(cString: strerror(errno)))") }
        offset += written
    }
}
