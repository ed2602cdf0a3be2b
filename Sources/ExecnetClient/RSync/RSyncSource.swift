// The source side of RSync: the list of the source directory (walked once per send, shared by
// every target), reading files in chunks, and the SHA-256 of files a target wants to compare
// (computed once per send, whichever target asks first).

import ExecnetCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The listed source directory of one send.
final class RSyncSource: Sendable {
    /// The source directory, resolved (no trailing slash, no links).
    let root: String
    /// Every entry, parents before children.
    let entries: [RSyncEntry]
    /// Index into `entries` by relative path.
    let index: [String: Int]
    private let digests = Mutex<[Int: [UInt8]]>([:])

    /// Lists `directory` with `filter`, without following links.
    ///
    /// - Throws: ``RSyncError`` `sourceUnreadable` if the directory (or a directory in it) cannot be read.
    init(directory: String, filter: RSyncFilter) throws(RSyncError) {
        guard let resolved = realpath(directory, nil) else {
            throw RSyncError(.sourceUnreadable, "cannot resolve the source \(directory): \(String(cString: strerror(errno)))")
        }
        root = String(cString: resolved)
        free(resolved)
        var st = stat()
        guard stat(root, &st) == 0, FileKind(mode: st.st_mode) == .directory else {
            throw RSyncError(.sourceUnreadable, "the source \(directory) is not a directory")
        }
        var entries: [RSyncEntry] = []
        try Self.walk(root: root, relative: "", filter: filter, into: &entries)
        guard entries.count <= RSyncWire.maxEntries else {
            throw RSyncError(.tooLarge, "the source has more than \(RSyncWire.maxEntries) entries")
        }
        self.entries = entries
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() { index[entry.path] = position }
        self.index = index
    }

    private static func walk(root: String, relative: String, filter: RSyncFilter, into entries: inout [RSyncEntry]) throws(RSyncError) {
        let directory = relative.isEmpty ? root : root + "/" + relative
        guard let stream = opendir(directory) else {
            throw RSyncError(.sourceUnreadable, "cannot read \(directory): \(String(cString: strerror(errno)))", path: relative)
        }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(stream)
        for name in names.sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            guard filter.includes(path) else { continue }
            let full = root + "/" + path
            var st = stat()
            guard lstat(full, &st) == 0 else { continue }  // gone since the listing
            let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            let mode = UInt32(st.st_mode & 0o7777)
            switch FileKind(mode: st.st_mode) {
            case .directory:
                entries.append(RSyncEntry(path: path, kind: .directory, mode: mode, mtimeNanoseconds: mtime, size: 0, linkTarget: nil))
                try walk(root: root, relative: path, filter: filter, into: &entries)
            case .regular:
                entries.append(RSyncEntry(path: path, kind: .file, mode: mode, mtimeNanoseconds: mtime,
                                          size: Int64(st.st_size), linkTarget: nil))
            case .symlink:
                guard let target = readLink(full) else { continue }
                entries.append(RSyncEntry(path: path, kind: .symlink, mode: mode, mtimeNanoseconds: mtime, size: 0,
                                          linkTarget: rebase(target, link: path, root: root)))
            case .other:
                continue  // sockets, fifos, devices: not copied (execnet refuses them)
            }
        }
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: RSyncWire.maxLinkTargetBytes + 1)
        let count = readlink(path, &buffer, buffer.count)
        guard count > 0, count <= RSyncWire.maxLinkTargetBytes else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A link's target as copied: an absolute target inside the source becomes relative (so it
    /// points to the same file inside the destination, as execnet's "linkbase"); others stay verbatim.
    static func rebase(_ target: String, link: String, root: String) -> String {
        guard target.hasPrefix(root + "/") else { return target }
        let inside = target.dropFirst(root.count + 1).split(separator: "/")
        let parent = link.split(separator: "/").dropLast()
        var common = 0
        while common < min(inside.count, parent.count), inside[common] == parent[common] { common += 1 }
        let ups = Array(repeating: "..", count: parent.count - common)
        let rest = inside[common...].map(String.init)
        let relative = (ups + rest).joined(separator: "/")
        return relative.isEmpty ? "." : relative
    }

    /// Opens the listed file `entry` for reading (never following a link that replaced it).
    func open(_ entry: RSyncEntry) throws(RSyncError) -> Int32 {
        let fd = Glibc.open(root + "/" + entry.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            throw RSyncError(.sourceUnreadable, "cannot open: \(String(cString: strerror(errno)))", path: entry.path)
        }
        return fd
    }

    /// The SHA-256 of the listed file at `position` (computed once per send).
    @available(*, noasync)
    func digest(_ position: Int) throws(RSyncError) -> [UInt8] {
        if let known = digests.withLock({ $0[position] }) { return known }
        let entry = entries[position]
        let fd = try open(entry)
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: RSyncWire.chunkSize)
        while true {
            let count = try Self.read(fd, into: &buffer, path: entry.path)
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        let digest = hasher.finalize()
        digests.withLock { $0[position] = digest }
        return digest
    }

    /// Reads up to `buffer.count` bytes; 0 at the end of the file.
    static func read(_ fd: Int32, into buffer: inout [UInt8], path: String) throws(RSyncError) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count >= 0 { return count }
            if errno != EINTR {
                throw RSyncError(.sourceUnreadable, "read failed: \(String(cString: strerror(errno)))", path: path)
            }
        }
    }
}
