// The client side of one target's transfer, on a thread of its own with the blocking channel API:
// send the list, take the wants (checking every path against the list), send what differs, wait
// for the worker's done. Everything the worker sends is checked before use.

import ExecnetCore
import ExecnetValue
#if canImport(Glibc)
import Glibc
#endif

/// One target's transfer.
struct RSyncTransfer {
    let gateway: Gateway
    let target: RSync.Target
    let taskName: String
    let delete: Bool
    let source: RSyncSource
    let progress: (@Sendable (RSyncProgress) -> Void)?
    let cancellation: RSyncCancellation

    /// What the transfer has done so far, for progress reports.
    private struct Tally {
        var filesPlanned = 0
        var bytesPlanned: Int64 = 0
        var filesSent = 0
        var bytesSent: Int64 = 0
        var filesUnchanged = 0
    }

    /// Runs the transfer; returns its failure, or `nil` when the target is complete.
    @available(*, noasync)
    func run() -> RSyncError? {
        let channel: Channel
        do {
            channel = try gateway.remoteExec(taskName, arguments: [], keywordArguments: [
                "destination": .string(target.destination), "delete": .bool(delete), "version": .int(RSyncWire.version),
            ])
        } catch {
            return RSyncError(.connectionLost, "cannot start the rsync task: \(error)", target: target)
        }
        guard cancellation.register(channel) else { return cancelledError() }
        do {
            try transfer(channel)
            try? channel.close()
            return nil
        } catch _ where cancellation.isCancelled {
            return cancelledError()
        } catch let failure as RSyncError {
            try? channel.close(error: failure.message)
            return failure
        } catch {
            // A send that failed because the worker closed the channel: its reason is queued.
            let failure = remoteFailure(channel, after: error)
            try? channel.close(error: failure.message)
            return failure
        }
    }

    @available(*, noasync)
    private func transfer(_ channel: Channel) throws {
        var tally = Tally()
        // The list, in batches.
        var batch: [Value] = []
        for entry in source.entries {
            batch.append(entry.value)
            if batch.count >= RSyncWire.batchSize {
                try channel.sendBlocking(.tuple(["entries", .list(batch)]))
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try channel.sendBlocking(.tuple(["entries", .list(batch)])) }
        try channel.sendBlocking(.tuple(["end", .int(Int64(source.entries.count))]))

        // What the worker wants: listed files only, each once, with a digest of 32 bytes or none.
        var wants: [(position: Int, digest: [UInt8]?)] = []
        var wanted = Set<Int>()
        wantLoop: while true {
            let parts = try receiveMessage(channel)
            switch (parts.verb, parts.arguments.count) {
            case ("want", 1):
                guard case .list(let items) = parts.arguments[0] else { throw violation("a want message without a list") }
                for item in items {
                    guard case .list(let fields) = item, fields.count == 2, case .string(let path) = fields[0] else {
                        throw violation("a malformed want: \(item.debugSummary)")
                    }
                    guard let position = source.index[path], source.entries[position].kind == .file else {
                        throw violation("the worker asked for \(path), which is not a listed file", path: path)
                    }
                    guard wanted.insert(position).inserted else { throw violation("the worker asked twice", path: path) }
                    switch fields[1] {
                    case .none: wants.append((position, nil))
                    case .bytes(let digest) where digest.count == SHA256.digestLength: wants.append((position, digest))
                    default: throw violation("a want with a malformed digest", path: path)
                    }
                }
            case ("wanted", 1):
                guard case .int(let count) = parts.arguments[0], count == wants.count else {
                    throw violation("the worker counted its wants wrong")
                }
                break wantLoop
            default:
                throw violation("expected want or wanted, got \(parts.verb)")
            }
        }
        tally.filesPlanned = wants.count
        tally.bytesPlanned = wants.reduce(0) { $0 + source.entries[$1.position].size }
        report(.planned, nil, tally)

        // The files, in the order asked.
        for (position, digest) in wants {
            let entry = source.entries[position]
            if let digest, try source.digest(position) == digest {
                try channel.sendBlocking(.tuple(["keep", .string(entry.path)]))
                tally.filesUnchanged += 1
                report(.fileUnchanged, entry.path, tally)
                continue
            }
            try sendFile(entry, channel, &tally)
            tally.filesSent += 1
            report(.fileSent, entry.path, tally)
        }

        // The worker's summary, then the end of its task.
        let done = try receiveMessage(channel)
        guard done.verb == "done" else { throw violation("expected done, got \(done.verb)") }
        report(.finished, nil, tally)
    }

    /// Streams one file: `("file", path, size)`, then `size` bytes in chunks.
    @available(*, noasync)
    private func sendFile(_ entry: RSyncEntry, _ channel: Channel, _ tally: inout Tally) throws {
        let fd = try source.open(entry)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, FileKind(mode: st.st_mode) == .regular else {
            throw RSyncError(.sourceUnreadable, "no longer a regular file", target: target, path: entry.path)
        }
        let size = Int64(st.st_size)
        try channel.sendBlocking(.tuple(["file", .string(entry.path), .int(size)]))
        var remaining = size
        var buffer = [UInt8](repeating: 0, count: RSyncWire.chunkSize)
        while remaining > 0 {
            if cancellation.isCancelled { throw cancelledError() }
            let count = try RSyncSource.read(fd, into: &buffer, path: entry.path)
            if count == 0 {
                throw RSyncError(.sourceUnreadable, "the file shrank while it was sent", target: target, path: entry.path)
            }
            let take = Int(min(Int64(count), remaining))
            let chunk = Array(buffer[0..<take])
            try channel.sendBlocking(.bytes(chunk))
            remaining -= Int64(take)
            tally.bytesSent += Int64(take)
            report(.chunkSent, entry.path, tally)
        }
    }

    /// Receives a `(verb, arguments…)` tuple; an `("error", …)` from the worker is thrown as its error.
    @available(*, noasync)
    private func receiveMessage(_ channel: Channel) throws -> (verb: String, arguments: [Value]) {
        let message: Value
        do {
            message = try channel.receiveBlocking()
        } catch {
            throw lost(error)
        }
        guard case .tuple(let parts) = message, let first = parts.first, case .string(let verb) = first else {
            throw violation("expected a message tuple, got \(message.debugSummary)")
        }
        if verb == "error" { throw reported(parts) }
        return (verb, Array(parts.dropFirst()))
    }

    /// The worker's `("error", code, message, path)` as an ``RSyncError``.
    private func reported(_ parts: [Value]) -> RSyncError {
        guard parts.count == 4, case .string(let codeText) = parts[1], case .string(let message) = parts[2],
            let code = RSyncWireError.Code(rawValue: codeText)
        else { return violation("a malformed error message") }
        var path: String?
        if case .string(let text) = parts[3] { path = text }
        return RSyncError(wire: RSyncWireError(code, message, path: path), target: target, isRemote: true)
    }

    /// After a failed send: the worker's queued `("error", …)` if there is one, else why the channel ended.
    @available(*, noasync)
    private func remoteFailure(_ channel: Channel, after error: any Error) -> RSyncError {
        // Bounded: the worker has closed the channel (that is why the send failed), so everything
        // it sent is queued or on its way.
        for _ in 0..<(RSyncWire.maxEntries / RSyncWire.batchSize + 16) {
            do {
                let message = try channel.receiveBlocking(timeout: .seconds(10))
                if case .tuple(let parts) = message, parts.first == "error" { return reported(parts) }
            } catch {
                return lost(error)
            }
        }
        return lost(error)
    }

    private func lost(_ error: any Error) -> RSyncError {
        if let remote = error as? RemoteError {
            return RSyncError(.remote, "the rsync task failed: \(remote.text)", target: target, isRemote: true)
        }
        if let execnet = error as? ExecnetError, let end = execnet.peerEnd {
            return RSyncError(.connectionLost, "the channel ended: \(end)", target: target)
        }
        return RSyncError(.connectionLost, "the channel ended: \(error)", target: target)
    }

    private func cancelledError() -> RSyncError {
        RSyncError(.cancelled, "the send was cancelled", target: target)
    }

    private func violation(_ message: String, path: String? = nil) -> RSyncError {
        RSyncError(.protocolViolation, message, target: target, path: path, isRemote: false)
    }

    private func report(_ event: RSyncProgress.Event, _ path: String?, _ tally: Tally) {
        progress?(RSyncProgress(target: target, event: event, path: path, filesPlanned: tally.filesPlanned,
                                bytesPlanned: tally.bytesPlanned, filesSent: tally.filesSent, bytesSent: tally.bytesSent,
                                filesUnchanged: tally.filesUnchanged))
    }
}
