// Channel-backed files (execnet's `channel.makefile`): a write file sends each write as one text
// item; a read file joins the text items it receives and hands them out by count or by line.
// Both are built on the public Channel API and work the same in a client and in a worker's task.

import ExecnetValue
import Synchronization

extension Channel {
    /// A file whose writes go to the other side as text items (execnet's `makefile("w")`).
    ///
    /// - Parameter proxyClose: Whether closing the file also closes the channel.
    /// - Returns: The write file.
    public func makeWriteFile(proxyClose: Bool = false) -> ChannelFileWriter {
        ChannelFileWriter(channel: self, proxyClose: proxyClose)
    }

    /// A file that reads the text items arriving on this channel (execnet's `makefile("r")`).
    ///
    /// - Parameter proxyClose: Whether closing the file, or reaching the channel's end, also
    ///   closes the channel.
    /// - Returns: The read file.
    public func makeReadFile(proxyClose: Bool = false) -> ChannelFileReader {
        ChannelFileReader(channel: self, proxyClose: proxyClose)
    }

    /// Closes the channel for a file's proxy close. A task's own channel is left to the runtime,
    /// which closes it when the task returns (a task may not close it itself).
    fileprivate func closeForFile() throws {
        if isTaskChannel || isClosed { return }
        try close()
    }
}

/// A write file over a channel (execnet's `ChannelFileWrite`).
///
/// ``write(_:)-(String)`` sends the text at once, as one item, as execnet does. The file is also a
/// `TextOutputStream`, so `print(…, to: &file)` works, in a task too: printed text is kept until
/// the next ``flush()``, ``write(_:)-(String)`` or ``close()`` sends it (a print cannot wait for
/// the channel's flow control), so flush what you print before the task returns.
///
/// ```swift
/// var out = channel.makeWriteFile()
/// print("hello world", to: &out)
/// try await out.flush()
/// ```
///
/// One writer at a time: concurrent writers may interleave their text in any order.
public final class ChannelFileWriter: TextOutputStream, Sendable, CustomStringConvertible {
    /// The channel the text goes to.
    public let channel: Channel
    /// Whether ``close()`` also closes the channel.
    public let proxyClose: Bool
    private let pending = Mutex("")

    init(channel: Channel, proxyClose: Bool) {
        self.channel = channel
        self.proxyClose = proxyClose
    }

    /// Sends `text` to the other side as one item, after any printed text not yet sent.
    ///
    /// - Parameter text: The text to send.
    /// - Throws: As ``Channel/send(_:)-(Value)``: `invalidState` once the channel is closed.
    public func write(_ text: String) async throws {
        let printed = takePending()
        try await channel.send(.string(printed + text))
    }

    /// Keeps `string` until the next flush: the `TextOutputStream` requirement that `print(_:to:)`
    /// calls.
    ///
    /// - Parameter string: The text to keep.
    public func write(_ string: String) {
        pending.withLock { $0 += string }
    }

    /// Sends the printed text not yet sent, if any, as one item.
    ///
    /// - Throws: As ``Channel/send(_:)-(Value)``.
    public func flush() async throws {
        let printed = takePending()
        if !printed.isEmpty { try await channel.send(.string(printed)) }
    }

    /// Sends the printed text not yet sent, blocking the calling thread while the window is full.
    ///
    /// - Throws: As ``Channel/sendBlocking(_:)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use flush()")
    public func flushBlocking() throws {
        let printed = takePending()
        if !printed.isEmpty { try channel.sendBlocking(.string(printed)) }
    }

    /// Sends `text` as one item, after any printed text not yet sent, blocking the calling thread
    /// while the window is full.
    ///
    /// - Parameter text: The text to send.
    /// - Throws: As ``Channel/sendBlocking(_:)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use write(_:)")
    public func writeBlocking(_ text: String) throws {
        let printed = takePending()
        try channel.sendBlocking(.string(printed + text))
    }

    /// Flushes (blocking), then closes the channel if the file was made with `proxyClose`.
    ///
    /// - Throws: As ``flushBlocking()``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use close()")
    public func closeBlocking() throws {
        try flushBlocking()
        if proxyClose { try channel.closeForFile() }
    }

    /// Flushes, then closes the channel if the file was made with `proxyClose`.
    ///
    /// On a task's own channel the proxy close is left to the runtime, which closes the channel
    /// when the task returns.
    ///
    /// - Throws: As ``flush()``.
    public func close() async throws {
        try await flush()
        if proxyClose { try channel.closeForFile() }
    }

    /// A channel file is never a terminal (execnet's `isatty()`).
    public var isTerminal: Bool { false }

    /// `<ChannelFile 3 open>`, as execnet's.
    public var description: String { "<ChannelFile \(channel.id) \(channel.isClosed ? "closed" : "open")>" }

    private func takePending() -> String {
        pending.withLock { text in
            defer { text = "" }
            return text
        }
    }
}

/// A read file over a channel (execnet's `ChannelFileRead`).
///
/// It joins the text items that arrive (strings; byte strings are read as UTF-8) and hands the
/// text out by count, by line, or line by line as an `AsyncSequence`. Counts are in Unicode
/// scalars, as Python counts a `str`. The channel's end is the file's end: reads then return
/// what is left, then empty text; with `proxyClose` the channel is closed there too. An error the
/// other side closed with is thrown (``RemoteError``), as execnet raises it.
///
/// One reader at a time: the file keeps what it has received but not yet handed out.
public final class ChannelFileReader: Sendable, CustomStringConvertible {
    private struct State {
        var buffer = String.UnicodeScalarView()
        var ended = false
    }
    /// The channel the text comes from.
    public let channel: Channel
    /// Whether ``close()`` and the end of the channel also close the channel.
    public let proxyClose: Bool
    private let state = Mutex(State())

    init(channel: Channel, proxyClose: Bool) {
        self.channel = channel
        self.proxyClose = proxyClose
    }

    /// Reads `count` characters (Unicode scalars), fewer only at the end.
    ///
    /// - Parameter count: How many to read; a negative count reads everything up to the end.
    /// - Returns: The text; empty at the end.
    /// - Throws: ``RemoteError`` if the other side closed with an error; ``ExecnetError``
    ///   `protocolViolation` for an item that is not text (it is consumed); `CancellationError`.
    public func read(_ count: Int) async throws -> String {
        while true {
            if let taken = take(count: count) { return taken }
            try await receiveMore()
        }
    }

    /// Reads one line, with its `"\n"`; the last line may lack it.
    ///
    /// Without `maxLength` a line is buffered whole, however long the other side makes it; a
    /// reader that does not trust the writer passes a bound (Python's `readline(size)`).
    ///
    /// - Parameter maxLength: At most this many characters (Unicode scalars, at least 1); a longer
    ///   line comes in pieces of this length.
    /// - Returns: The line; empty at the end.
    /// - Throws: As ``read(_:)``.
    public func readline(maxLength: Int? = nil) async throws -> String {
        while true {
            if let taken = takeLine(maxLength: maxLength) { return taken }
            try await receiveMore()
        }
    }

    /// Reads `count` characters, blocking the calling thread (see ``read(_:)``).
    ///
    /// - Parameter count: How many to read; a negative count reads everything up to the end.
    /// - Returns: The text; empty at the end.
    /// - Throws: As ``read(_:)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use read(_:)")
    public func readBlocking(_ count: Int) throws -> String {
        while true {
            if let taken = take(count: count) { return taken }
            try absorb { try channel.receiveBlocking() }
        }
    }

    /// Reads one line, blocking the calling thread (see ``readline(maxLength:)``).
    ///
    /// - Parameter maxLength: At most this many characters.
    /// - Returns: The line; empty at the end.
    /// - Throws: As ``read(_:)``.
    /// - Important: Blocks the calling thread. For tasks that run on a thread of their own.
    @available(*, noasync, message: "blocks the calling thread; use readline(maxLength:)")
    public func readlineBlocking(maxLength: Int? = nil) throws -> String {
        while true {
            if let taken = takeLine(maxLength: maxLength) { return taken }
            try absorb { try channel.receiveBlocking() }
        }
    }

    /// Takes `count` buffered characters, or what is left at the end; `nil` if more must come.
    private func take(count: Int) -> String? {
        state.withLock { state -> String? in
            let available = state.buffer.count
            guard state.ended || (count >= 0 && available >= count) else { return nil }
            let end = count < 0 ? available : Swift.min(count, available)
            let cut = state.buffer.index(state.buffer.startIndex, offsetBy: end)
            let text = String(state.buffer[..<cut])
            state.buffer.removeSubrange(..<cut)
            return text
        }
    }

    /// Takes a buffered line (or `maxLength` characters of one, or what is left at the end);
    /// `nil` if more must come.
    private func takeLine(maxLength: Int?) -> String? {
        let limit = maxLength.map { Swift.max($0, 1) }
        return state.withLock { state -> String? in
            var cut: String.UnicodeScalarView.Index?
            if let newline = state.buffer.firstIndex(of: "\n") { cut = state.buffer.index(after: newline) }
            if let limit, state.buffer.count >= limit {
                let bound = state.buffer.index(state.buffer.startIndex, offsetBy: limit)
                if cut.map({ $0 > bound }) ?? true { cut = bound }
            }
            if cut == nil, state.ended { cut = state.buffer.endIndex }
            guard let cut else { return nil }
            let line = String(state.buffer[..<cut])
            state.buffer.removeSubrange(..<cut)
            return line
        }
    }

    /// Closes the channel if the file was made with `proxyClose` (on a task's own channel, the
    /// runtime closes it when the task returns).
    ///
    /// - Throws: Nothing today (kept `throws`, as execnet's `close` may raise).
    public func close() throws {
        if proxyClose { try channel.closeForFile() }
    }

    /// A channel file is never a terminal (execnet's `isatty()`).
    public var isTerminal: Bool { false }

    /// `<ChannelFile 3 open>`, as execnet's.
    public var description: String { "<ChannelFile \(channel.id) \(channel.isClosed ? "closed" : "open")>" }

    /// Receives one item into the buffer, or notes the end.
    private func receiveMore() async throws {
        let item: Value
        do {
            item = try await channel.receive()
        } catch let error as ExecnetError where error.code == .endOfChannel {
            try reachedEnd()
            return
        }
        try append(item)
    }

    /// Receives one item with `receive` into the buffer, or notes the end.
    private func absorb(_ receive: () throws -> Value) throws {
        let item: Value
        do {
            item = try receive()
        } catch let error as ExecnetError where error.code == .endOfChannel {
            try reachedEnd()
            return
        }
        try append(item)
    }

    private func reachedEnd() throws {
        state.withLock { $0.ended = true }
        try close()
    }

    private func append(_ item: Value) throws {
        let text: String
        switch item {
        case .string(let string): text = string
        case .bytes(let bytes): text = String(decoding: bytes, as: UTF8.self)
        default:
            throw ExecnetError(.protocolViolation, "a read file takes text items; channel \(channel.id) sent \(item)",
                               gatewayID: channel.gatewayID, channelID: channel.id)
        }
        state.withLock { $0.buffer.append(contentsOf: text.unicodeScalars) }
    }
}

extension ChannelFileReader: AsyncSequence {
    public typealias Element = String

    /// Iterates the file's lines, each with its `"\n"` (the last may lack it), until the end.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let file: ChannelFileReader

        /// The next line, or `nil` at the end.
        public mutating func next() async throws -> String? {
            let line = try await file.readline()
            return line.isEmpty ? nil : line
        }
    }

    /// An iterator over the file's lines.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(file: self) }
}
