// Log capture for tests: a swift-log handler that keeps every message, so a test can count the
// lines a flood of bad input produced.

import Logging
import Synchronization

/// The messages logged through the loggers it made, in order.
package final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    package init() {}

    /// Every message so far.
    package var snapshot: [String] { lines.withLock { $0 } }

    /// How many messages so far contain `text`.
    package func count(containing text: String) -> Int { snapshot.filter { $0.contains(text) }.count }

    /// A logger at debug level whose messages go here.
    package func logger(label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in CollectingHandler(sink: self) }
        logger.logLevel = .debug
        return logger
    }

    fileprivate func append(_ line: String) { lines.withLock { $0.append(line) } }
}

/// The handler behind `LogLines.logger(label:)`.
private struct CollectingHandler: LogHandler {
    let sink: LogLines
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.append("\(event.message)")
    }
}
