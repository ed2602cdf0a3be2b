// `--log-format json`: one JSON object per log line, for log shippers. The object carries the
// time, level, logger label, message, source location and every metadata value (gateway id, host,
// client, ...) as a field of its own. Encoded with Foundation's JSONEncoder: this module is linked by
// the executables only, never by the library modules or the worker.

import Foundation
import Logging

/// The log line formats the executables offer.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's stream handler: `time level label: [metadata] message`.
    case text
    /// One JSON object per line.
    case json

    /// Bootstraps swift-log with this format, writing to standard error.
    public func bootstrap() {
        switch self {
        case .text: LoggingSystem.bootstrap(StreamLogHandler.standardError)
        case .json: LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        }
    }
}

/// A LogHandler that writes each entry to standard error as one line of JSON.
public struct JSONLogHandler: LogHandler {
    private struct Line: Encodable {
        let time: String
        let level: String
        let label: String
        let message: String
        let source: String
        let file: String
        let line: UInt
        let metadata: [String: String]
    }

    /// The logger's label.
    public let label: String
    /// Metadata every entry of this logger carries.
    public var metadata: Logger.Metadata = [:]
    /// The lowest level written.
    public var logLevel: Logger.Level = .info

    /// A handler for the logger labelled `label`.
    public init(label: String) {
        self.label = label
    }

    /// Metadata of this logger by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one entry as a JSON line on standard error.
    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata { fields[key] = "\(value)" }
        for (key, value) in event.metadata ?? [:] { fields[key] = "\(value)" }
        let entry = Line(
            time: Date().ISO8601Format(.iso8601.year().month().day().time(includingFractionalSeconds: true)),
            level: event.level.rawValue, label: label, message: "\(event.message)", source: event.source,
            file: event.file, line: event.line, metadata: fields)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(entry) else { return }
        data.append(0x0a)
        FileHandle.standardError.write(data)
    }
}
