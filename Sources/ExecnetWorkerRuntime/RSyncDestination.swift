// The rsync task's view of its destination directory: every operation goes through a descriptor of
// the destination and `*at` calls with O_NOFOLLOW on every component, so a symbolic link in the
// destination (planted before or during a transfer) is never followed when writing or deleting.

import ExecnetCore
#if canImport(Glibc)
import Glibc
#endif

/// A destination directory opened for one transfer.
final class RSyncDestination {
    /// The destination's descriptor: every path is resolved from it.
    let rootFD: Int32

    /// Opens (creating if missing) the destination directory `path`.
    ///
    /// Refuses a destination that is not a directory, that is itself a symbolic link, that belongs
    /// to another user, or that others may write without the sticky bit: each could be a squatter's
    /// trap (docs/SECURITY.md). Components above the last one are resolved as the system does.
    init(path: String) throws(RSyncWireError) {
        if path.isEmpty { throw RSyncWireError(.destinationNotDirectory, "empty destination path") }
        var st = stat()
        if lstat(path, &st) != 0 {
            guard errno == ENOENT else { throw .system("lstat", path: path) }
            makeDirectories(path)
            if lstat(path, &st) != 0 { throw .system("mkdir", path: path) }
        }
        switch FileKind(mode: st.st_mode) {
        case .directory: break
        case .symlink:
            throw RSyncWireError(.destinationUnsafe, "the destination \(path) is a symbolic link; name the directory it points to")
        default:
            throw RSyncWireError(.destinationNotDirectory, "the destination \(path) exists and is not a directory")
        }
        if st.st_uid != geteuid() {
            throw RSyncWireError(.destinationUnsafe,
                                 "the destination \(path) belongs to uid \(st.st_uid), not to this worker's uid \(geteuid())")
        }
        if st.st_mode & 0o002 != 0 && st.st_mode & 0o1000 == 0 {
            throw RSyncWireError(.destinationUnsafe, "the destination \(path) is writable by others")
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw .system("open", path: path) }
        var opened = stat()
        if fstat(fd, &opened) != 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino {
            close(fd)
            throw RSyncWireError(.destinationUnsafe, "the destination \(path) changed while it was opened")
        }
        rootFD = fd
    }

    deinit {
        close(rootFD)
    }

    /// Runs `body` with a descriptor of `path`'s parent directory and `path`'s last component.
    ///
    /// Every directory on the way is opened with O_NOFOLLOW: a link where a directory should be
    /// fails with `unsafe-path` instead of leading out of the destination.
    func withParent<T>(of path: String, _ body: (Int32, String) throws(RSyncWireError) -> T) throws(RSyncWireError) -> T {
        let (parent, name) = RSyncWire.split(path)
        if parent.isEmpty { return try body(rootFD, name) }
        let fd = try openDirectory(parent)
        defer { close(fd) }
        return try body(fd, name)
    }

    /// Opens the directory at the relative `path` without following any link.
    func openDirectory(_ path: String) throws(RSyncWireError) -> Int32 {
        var fd = rootFD
        for component in path.split(separator: "/") {
            let next = openat(fd, String(component), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            if fd != rootFD { close(fd) }
            if next < 0 {
                if failure == ELOOP || failure == ENOTDIR {
                    throw RSyncWireError(.unsafePath, "a component of \(path) is not a directory (a link?)", path: path)
                }
                throw .system("open", path: path, errno: failure)
            }
            fd = next
        }
        return fd == rootFD ? dup(rootFD) : fd
    }

    /// The status of `name` in `directory`, not following a link; `nil` if it does not exist.
    func status(_ directory: Int32, _ name: String, path: String) throws(RSyncWireError) -> stat? {
        var st = stat()
        if fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return st }
        if errno == ENOENT { return nil }
        throw .system("stat", path: path)
    }

    /// Removes `name` from `directory`, a directory with everything in it; links are removed, never followed.
    /// - Returns: How many entries were removed.
    @discardableResult
    func remove(_ directory: Int32, _ name: String, path: String) throws(RSyncWireError) -> Int {
        guard let st = try status(directory, name, path: path) else { return 0 }
        if FileKind(mode: st.st_mode) != .directory {
            if unlinkat(directory, name, 0) != 0 && errno != ENOENT { throw .system("unlink", path: path) }
            return 1
        }
        let fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw .system("open", path: path) }
        // Emptying a read-only directory needs its write bit.
        _ = fchmod(fd, (st.st_mode & 0o7777) | 0o700)
        var removed = 0
        let names: [String]
        do {
            names = try list(fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        do {
            for child in names { removed += try remove(fd, child, path: path + "/" + child) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if unlinkat(directory, name, AT_REMOVEDIR) != 0 && errno != ENOENT { throw .system("rmdir", path: path) }
        return removed + 1
    }

    /// The names in the directory `fd` (without `.` and `..`); `fd` stays open.
    func list(_ fd: Int32, path: String) throws(RSyncWireError) -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw .system("opendir", path: path)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The target of the link `name` in `directory`.
    func linkTarget(_ directory: Int32, _ name: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: RSyncWire.maxLinkTargetBytes + 1)
        let count = buffer.withUnsafeMutableBytes { readlinkat(directory, name, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard count >= 0, count <= RSyncWire.maxLinkTargetBytes else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// The SHA-256 of the regular file `name` in `directory` (opened without following a link).
    func digest(_ directory: Int32, _ name: String, path: String) throws(RSyncWireError) -> [UInt8] {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw .system("open", path: path) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: RSyncWire.chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw .system("read", path: path) }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hasher.finalize()
    }

    /// Bytes the destination's file system has free for this user.
    func availableBytes() -> Int64? {
        var info = statvfs()
        guard fstatvfs(rootFD, &info) == 0 else { return nil }
        let (product, overflow) = Int64(clamping: info.f_bavail).multipliedReportingOverflow(by: Int64(clamping: info.f_frsize))
        return overflow ? Int64.max : product
    }
}

/// A `timespec` pair for `utimensat`/`futimens`: access and modification time both `nanoseconds`.
func fileTimes(_ nanoseconds: Int64) -> [timespec] {
    var seconds = nanoseconds / 1_000_000_000
    var rest = nanoseconds % 1_000_000_000
    if rest < 0 {
        seconds -= 1
        rest += 1_000_000_000
    }
    let time = timespec(tv_sec: Int(seconds), tv_nsec: Int(rest))
    return [time, time]
}
