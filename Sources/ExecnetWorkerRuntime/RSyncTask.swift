// The worker side of RSync: the `execnet.rsync` task every worker offers. It receives the source
// list, makes directories and links, answers with the files it wants (and the SHA-256 of what it
// has, where the size matches), deletes what the source no longer has, then writes the files the
// client streams, in chunks, each into a temporary file renamed into place once complete and
// checked. Messages: docs/PROTOCOL.md, "The rsync task".

import ExecnetCore
import ExecnetValue
#if canImport(Glibc)
import Glibc
#endif

extension TaskRegistry {
    /// Adds the `execnet.rsync` task (the worker side of the client's `RSync`) unless a task of
    /// that name is registered already.
    ///
    /// Every worker runtime calls it, so workers built with ``WorkerMain`` offer it without asking.
    public mutating func registerRSync() {
        guard self[RSyncWire.taskName] == nil else { return }
        registerThread(RSyncWire.taskName, runRSyncTask)
    }
}

/// The rsync task: runs a transfer and turns its typed failure into an `("error", …)` message.
@available(*, noasync)
func runRSyncTask(_ context: TaskContext) throws {
    do {
        try RSyncReceiver(context).run()
    } catch let failure as RSyncWireError {
        try context.channel.sendBlocking(failure.value)
    }
}

/// One transfer into one destination.
private final class RSyncReceiver {
    private let channel: Channel
    private let destinationPath: String
    private let delete: Bool
    private var entries: [RSyncEntry] = []
    /// The names each listed directory (`""` is the destination) has in the source.
    private var children: [String: Set<String>] = ["": []]
    /// Files the client must send or confirm, in the order it answers them.
    private var wants: [Int] = []
    private var filesWritten = 0
    private var bytesWritten: Int64 = 0
    private var removed = 0
    private var temporaryCounter = 0

    init(_ context: TaskContext) throws(RSyncWireError) {
        channel = context.channel
        guard case .string(let destination)? = context["destination"] else {
            throw RSyncWireError(.protocolViolation, "the rsync task needs a destination keyword (a string)")
        }
        destinationPath = destination
        if case .bool(let flag)? = context["delete"] { delete = flag } else { delete = false }
        if case .int(let version)? = context["version"], version != RSyncWire.version {
            throw RSyncWireError(.protocolViolation, "rsync version \(version) is not supported; this worker speaks \(RSyncWire.version)")
        }
    }

    @available(*, noasync)
    func run() throws {
        let destination = try RSyncDestination(path: destinationPath)
        try receiveList()
        try applyStructure(destination)
        if delete { try deleteExtras(destination) }
        try channel.sendBlocking(.tuple(["wanted", .int(Int64(wants.count))]))
        for index in wants { try receiveFile(entries[index], destination) }
        try finishMetadata(destination)
        try channel.sendBlocking(.tuple(["done", .dict([
            "files": .int(Int64(filesWritten)), "bytes": .int(bytesWritten), "deleted": .int(Int64(removed)),
        ])]))
    }

    // MARK: - The source list

    @available(*, noasync)
    private func receiveList() throws {
        var seen: Set<String> = []
        while true {
            let message = try channel.receiveBlocking()
            guard case .tuple(let parts) = message, parts.count == 2, case .string(let verb) = parts[0] else {
                throw RSyncWireError(.protocolViolation, "expected an entries or end message, got \(message.debugSummary)")
            }
            switch (verb, parts[1]) {
            case ("entries", .list(let items)):
                guard entries.count + items.count <= RSyncWire.maxEntries else {
                    throw RSyncWireError(.tooLarge, "more than \(RSyncWire.maxEntries) entries")
                }
                for item in items {
                    let entry = try RSyncEntry(item)
                    guard seen.insert(entry.path).inserted else {
                        throw RSyncWireError(.protocolViolation, "listed twice", path: entry.path)
                    }
                    let (parent, name) = RSyncWire.split(entry.path)
                    guard children[parent] != nil else {
                        throw RSyncWireError(.protocolViolation, "listed before its directory", path: entry.path)
                    }
                    children[parent]!.insert(name)
                    if entry.kind == .directory { children[entry.path] = [] }
                    entries.append(entry)
                }
            case ("end", .int(let count)):
                guard count == entries.count else {
                    throw RSyncWireError(.protocolViolation, "the list ended after \(entries.count) entries, not \(count)")
                }
                return
            default:
                throw RSyncWireError(.protocolViolation, "expected an entries or end message, got \(message.debugSummary)")
            }
        }
    }

    // MARK: - Directories, links, and what to ask for

    @available(*, noasync)
    private func applyStructure(_ destination: RSyncDestination) throws {
        var batch: [Value] = []
        for (index, entry) in entries.enumerated() {
            let want: Value? = try destination.withParent(of: entry.path) { (directory, name) throws(RSyncWireError) -> Value? in
                let existing = try destination.status(directory, name, path: entry.path)
                let kind = existing.map { FileKind(mode: $0.st_mode) }
                switch entry.kind {
                case .directory:
                    if kind == .directory {
                        // Writable while the transfer fills it; its own mode comes at the end.
                        let fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                        if fd < 0 { throw .system("open", path: entry.path) }
                        _ = fchmod(fd, (existing!.st_mode & 0o7777) | 0o700)
                        close(fd)
                        return nil
                    }
                    if existing != nil { removed += try destination.remove(directory, name, path: entry.path) }
                    if mkdirat(directory, name, 0o700) != 0 { throw .system("mkdir", path: entry.path) }
                    return nil
                case .symlink:
                    if kind == .symlink, destination.linkTarget(directory, name) == entry.linkTarget { return nil }
                    if existing != nil { removed += try destination.remove(directory, name, path: entry.path) }
                    if symlinkat(entry.linkTarget!, directory, name) != 0 { throw .system("symlink", path: entry.path) }
                    return nil
                case .file:
                    if kind == .regular, existing!.st_size == entry.size {
                        let digest = try destination.digest(directory, name, path: entry.path)
                        return .list([.string(entry.path), .bytes(digest)])
                    }
                    if existing != nil, kind != .regular { removed += try destination.remove(directory, name, path: entry.path) }
                    return .list([.string(entry.path), .none])
                }
            }
            guard let want else { continue }
            wants.append(index)
            batch.append(want)
            if batch.count >= RSyncWire.batchSize {
                try channel.sendBlocking(.tuple(["want", .list(batch)]))
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try channel.sendBlocking(.tuple(["want", .list(batch)])) }
    }

    /// Removes from every listed directory what the source does not have there.
    private func deleteExtras(_ destination: RSyncDestination) throws(RSyncWireError) {
        for (path, names) in children {
            let fd = try destination.openDirectory(path)
            defer { close(fd) }
            for name in try destination.list(fd, path: path) where !names.contains(name) {
                removed += try destination.remove(fd, name, path: path.isEmpty ? name : path + "/" + name)
            }
        }
    }

    // MARK: - File contents

    @available(*, noasync)
    private func receiveFile(_ entry: RSyncEntry, _ destination: RSyncDestination) throws {
        let message = try channel.receiveBlocking()
        guard case .tuple(let parts) = message, parts.count >= 2, case .string(let verb) = parts[0],
            case .string(let path) = parts[1], path == entry.path
        else {
            throw RSyncWireError(.protocolViolation, "expected keep or file for \(entry.path), got \(message.debugSummary)",
                                 path: entry.path)
        }
        switch (verb, parts.count) {
        case ("keep", 2):
            try destination.withParent(of: path) { (directory, name) throws(RSyncWireError) in
                let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 { throw .system("open", path: path) }
                defer { close(fd) }
                try setMetadata(fd, entry)
            }
        case ("file", 3):
            guard case .int(let size) = parts[2], size >= 0 else {
                throw RSyncWireError(.protocolViolation, "a file message without a size", path: path)
            }
            if let available = destination.availableBytes(), size > available {
                throw RSyncWireError(.noSpace, "the file needs \(size) bytes; the destination has \(available) free", path: path)
            }
            let (parent, name) = RSyncWire.split(path)
            let directory = try destination.openDirectory(parent)
            defer { close(directory) }
            try writeFile(entry, size: size, directory: directory, name: name)
        default:
            throw RSyncWireError(.protocolViolation, "expected keep or file for \(entry.path), got \(message.debugSummary)",
                                 path: entry.path)
        }
    }

    /// Receives `size` bytes into a new temporary file next to `name` and renames it over `name`.
    /// A failure (or a channel that ends) removes the temporary file.
    @available(*, noasync)
    private func writeFile(_ entry: RSyncEntry, size: Int64, directory: Int32, name: String) throws {
        temporaryCounter += 1
        let temporary = ".execnet-rsync-\(getpid())-\(temporaryCounter).tmp"
        let fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd < 0 { throw RSyncWireError.system("create", path: entry.path) }
        var renamed = false
        defer {
            close(fd)
            if !renamed { unlinkat(directory, temporary, 0) }
        }
        var received: Int64 = 0
        while received < size {
            let message = try channel.receiveBlocking()
            guard case .bytes(let chunk) = message, !chunk.isEmpty, Int64(chunk.count) <= size - received else {
                throw RSyncWireError(.protocolViolation, "expected at most \(size - received) more bytes, got \(message.debugSummary)",
                                     path: entry.path)
            }
            // 0, or the errno of a failed write.
            let failure: Int32 = chunk.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let count = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if count < 0 && errno == EINTR { continue }
                    if count < 0 { return errno }
                    offset += count
                }
                return 0
            }
            if failure != 0 { throw RSyncWireError.system("write", path: entry.path, errno: failure) }
            received += Int64(chunk.count)
        }
        try setMetadata(fd, entry)
        if renameat(directory, temporary, directory, name) != 0 { throw RSyncWireError.system("rename", path: entry.path) }
        renamed = true
        filesWritten += 1
        bytesWritten += size
    }

    private func setMetadata(_ fd: Int32, _ entry: RSyncEntry) throws(RSyncWireError) {
        if fchmod(fd, mode_t(entry.mode)) != 0 { throw .system("chmod", path: entry.path) }
        let times = fileTimes(entry.mtimeNanoseconds)
        if futimens(fd, times) != 0 { throw .system("utimens", path: entry.path) }
    }

    // MARK: - Last: modes and times of directories and links

    /// Deepest first, so setting a directory's time is the last change inside its parent.
    private func finishMetadata(_ destination: RSyncDestination) throws(RSyncWireError) {
        for entry in entries.reversed() where entry.kind != .file {
            try destination.withParent(of: entry.path) { (directory, name) throws(RSyncWireError) in
                let times = fileTimes(entry.mtimeNanoseconds)
                if entry.kind == .symlink {
                    if utimensat(directory, name, times, AT_SYMLINK_NOFOLLOW) != 0 { throw .system("utimens", path: entry.path) }
                    return
                }
                let fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 { throw .system("open", path: entry.path) }
                defer { close(fd) }
                if fchmod(fd, mode_t(entry.mode)) != 0 { throw .system("chmod", path: entry.path) }
                if futimens(fd, times) != 0 { throw .system("utimens", path: entry.path) }
            }
        }
    }
}
