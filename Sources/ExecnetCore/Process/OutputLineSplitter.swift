// Cuts a byte stream (a worker's stdout or stderr, read in chunks of any size) into lines. A line
// ends at LF or CR LF (the terminator is not part of it); a lone CR is kept as text. A line longer
// than the bound is cut into pieces of the bound, so what is held back never exceeds the bound
// however long a worker writes without a newline. At the end of the stream, the partial last line
// is given too.

/// Splits output chunks into lines, holding at most a bounded partial line between chunks.
package struct OutputLineSplitter: Sendable {
    /// The longest line given whole; a longer one comes as several pieces of this length.
    package let maximumLineLength: Int
    /// The bytes of the line not yet ended (at most ``maximumLineLength`` + 1: a CR that may begin
    /// a CR LF is held with a full piece).
    package private(set) var pending: [UInt8] = []

    /// The default bound: 64 KiB.
    package static let defaultMaximumLineLength = 64 * 1024

    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    /// Creates a splitter.
    ///
    /// - Parameter maximumLineLength: The bound of one line (at least 1).
    package init(maximumLineLength: Int = defaultMaximumLineLength) {
        precondition(maximumLineLength >= 1, "a line bound is at least one byte")
        self.maximumLineLength = maximumLineLength
    }

    /// Takes the next chunk of the stream and gives each line it completes, in order.
    ///
    /// - Parameters:
    ///   - chunk: The bytes read.
    ///   - line: Called once per line (or piece of an over-long line), without its terminator.
    package mutating func feed(_ chunk: ArraySlice<UInt8>, _ line: ([UInt8]) -> Void) {
        var start = chunk.startIndex
        while let newline = chunk[start...].firstIndex(of: Self.lineFeed) {
            if pending.isEmpty {
                emit(chunk[start..<newline], line)
            } else {
                pending.append(contentsOf: chunk[start..<newline])
                emit(pending[...], line)
                pending.removeAll(keepingCapacity: true)
            }
            start = newline + 1
        }
        pending.append(contentsOf: chunk[start...])
        // Hold back at most one piece (and a CR that a LF in the next chunk would end).
        var given = 0
        while pending.count - given > maximumLineLength,
              !(pending.count - given == maximumLineLength + 1 && pending.last == Self.carriageReturn) {
            line(Array(pending[given..<(given + maximumLineLength)]))
            given += maximumLineLength
        }
        if given > 0 { pending.removeFirst(given) }
    }

    /// Ends the stream: gives the partial last line, if any.
    ///
    /// - Parameter line: Called for the partial line (in pieces if it is over-long).
    package mutating func finish(_ line: ([UInt8]) -> Void) {
        guard !pending.isEmpty else { return }
        emit(pending[...], line)
        pending = []
    }

    /// Gives one ended line: without a final CR, in pieces of the bound.
    private func emit(_ text: ArraySlice<UInt8>, _ line: ([UInt8]) -> Void) {
        var text = text
        if text.last == Self.carriageReturn { text = text.dropLast() }
        guard text.count > maximumLineLength else {
            line(Array(text))
            return
        }
        var start = text.startIndex
        while start < text.endIndex {
            let end = min(start + maximumLineLength, text.endIndex)
            line(Array(text[start..<end]))
            start = end
        }
    }
}
