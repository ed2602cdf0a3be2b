// The messages of the rsync task (docs/PROTOCOL.md, "The rsync task"), shared by the client's
// RSync and the worker's task: entries of the source list, path checks, error codes, limits.

import ExecnetValue
#if canImport(Glibc)
import Glibc
#endif

/// Names, limits and message shapes of the rsync task.
package enum RSyncWire {
    /// The task's name in every worker's registry.
    package static let taskName = "execnet.rsync"
    /// The version of the task's messages (`version` keyword of the EXEC).
    package static let version: Int64 = 1
    /// Bytes per content chunk: 64 of them fill a channel's 16 MiB window.
    package static let chunkSize = 256 * 1024
    /// Entries (or wants) per list message.
    package static let batchSize = 512
    /// The most entries one transfer may list (a lying peer's list stays bounded in memory).
    package static let maxEntries = 1_000_000
    /// The longest relative path, in UTF-8 bytes (Linux's PATH_MAX).
    package static let maxPathBytes = 4096
    /// The longest link target, in UTF-8 bytes.
    package static let maxLinkTargetBytes = 4096

    /// Why `path` is not a safe relative path inside a destination, or `nil` when it is.
    ///
    /// A safe path is non-empty, relative, at most ``maxPathBytes`` long, has no NUL, and none of
    /// its `/`-separated components is empty, `.` or `..` or longer than 255 bytes.
    package static func unsafePathReason(_ path: String) -> String? {
        let bytes = path.utf8
        if bytes.isEmpty { return "empty path" }
        if bytes.count > maxPathBytes { return "path longer than \(maxPathBytes) bytes" }
        if bytes.first == UInt8(ascii: "/") { return "absolute path" }
        if bytes.contains(0) { return "path with a NUL byte" }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "empty path component" }
            if component == "." || component == ".." { return "path component '\(component)'" }
            if component.utf8.count > 255 { return "path component longer than 255 bytes" }
        }
        return nil
    }

    /// The parent of a relative path (`""` for a top-level name) and its last component.
    package static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }
}

/// One entry of the source list: a directory, a regular file or a symbolic link.
package struct RSyncEntry: Sendable, Hashable {
    /// What an entry is.
    package enum Kind: String, Sendable {
        case file = "f"
        case directory = "d"
        case symlink = "l"
    }

    /// The path relative to the source (and destination) directory, `/`-separated.
    package var path: String
    package var kind: Kind
    /// Permission bits (`0o7777` at most).
    package var mode: UInt32
    /// Modification time in nanoseconds since the epoch.
    package var mtimeNanoseconds: Int64
    /// A file's size in bytes (0 for the others).
    package var size: Int64
    /// A link's target text (`nil` for the others).
    package var linkTarget: String?

    package init(path: String, kind: Kind, mode: UInt32, mtimeNanoseconds: Int64, size: Int64, linkTarget: String?) {
        self.path = path
        self.kind = kind
        self.mode = mode & 0o7777
        self.mtimeNanoseconds = mtimeNanoseconds
        self.size = size
        self.linkTarget = linkTarget
    }

    /// The entry as it travels: `[path, kind, mode, mtime_ns, size, target-or-None]`.
    package var value: Value {
        .list([.string(path), .string(kind.rawValue), .int(Int64(mode)), .int(mtimeNanoseconds), .int(size),
               linkTarget.map { .string($0) } ?? .none])
    }

    /// Decodes and checks an entry; the error text says what is wrong.
    package init(_ value: Value) throws(RSyncWireError) {
        guard case .list(let fields) = value, fields.count == 6,
            case .string(let path) = fields[0], case .string(let kindText) = fields[1],
            case .int(let mode) = fields[2], case .int(let mtime) = fields[3], case .int(let size) = fields[4]
        else { throw RSyncWireError(.protocolViolation, "malformed entry: \(value.debugSummary)") }
        guard let kind = Kind(rawValue: kindText) else {
            throw RSyncWireError(.protocolViolation, "unknown entry kind '\(kindText)'", path: path)
        }
        if let reason = RSyncWire.unsafePathReason(path) {
            throw RSyncWireError(.unsafePath, "unsafe path: \(reason)", path: path)
        }
        guard mode >= 0, mode <= 0o7777 else { throw RSyncWireError(.protocolViolation, "mode out of range", path: path) }
        guard size >= 0, kind == .file || size == 0 else {
            throw RSyncWireError(.protocolViolation, "bad size \(size)", path: path)
        }
        var target: String?
        switch (kind, fields[5]) {
        case (.symlink, .string(let text)):
            guard !text.isEmpty, text.utf8.count <= RSyncWire.maxLinkTargetBytes, !text.utf8.contains(0) else {
                throw RSyncWireError(.protocolViolation, "bad link target", path: path)
            }
            target = text
        case (.symlink, _): throw RSyncWireError(.protocolViolation, "a link without a target", path: path)
        case (_, .none): break
        default: throw RSyncWireError(.protocolViolation, "a target on an entry that is not a link", path: path)
        }
        self.init(path: path, kind: kind, mode: UInt32(mode), mtimeNanoseconds: mtime, size: size, linkTarget: target)
    }
}

/// A failure of the rsync task as it travels in an `("error", code, message, path)` message.
package struct RSyncWireError: Error, Sendable, CustomStringConvertible {
    /// The wire spelling of a failure's kind.
    package enum Code: String, Sendable {
        case unsafePath = "unsafe-path"
        case destinationNotDirectory = "destination-not-directory"
        case destinationUnsafe = "destination-unsafe"
        case noSpace = "no-space"
        case io = "io"
        case protocolViolation = "protocol"
        case tooLarge = "too-large"
    }

    package var code: Code
    package var message: String
    package var path: String?

    package init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    /// An error for a failed system call on `path`, with errno's text.
    package static func system(_ call: String, path: String?, errno number: Int32 = errno) -> RSyncWireError {
        let text = String(cString: strerror(number))
        let code: Code = number == ENOSPC || number == EDQUOT ? .noSpace : .io
        return RSyncWireError(code, "\(call) failed: \(text) (errno \(number))", path: path)
    }

    /// The `("error", code, message, path-or-None)` message.
    package var value: Value {
        .tuple(["error", .string(code.rawValue), .string(message), path.map { .string($0) } ?? .none])
    }

    package var description: String {
        "\(code.rawValue): \(message)" + (path.map { " [\($0)]" } ?? "")
    }
}

extension Value {
    /// What kind of value this is, for error messages (a lying peer's value may be huge).
    package var debugSummary: String {
        switch self {
        case .list(let items): "a list of \(items.count)"
        case .tuple(let items): "a tuple of \(items.count)" + (items.first.map { ", first \($0.debugSummary)" } ?? "")
        case .string(let text): text.utf8.count <= 64 ? "'\(text)'" : "a string of \(text.utf8.count) bytes"
        case .bytes(let bytes): "\(bytes.count) bytes"
        case .int(let number): "\(number)"
        case .none: "None"
        default: "a value of another type"
        }
    }
}

/// The file types rsync tells apart (from `st_mode`), on both the sending and the receiving side.
package enum FileKind: Sendable {
    case directory, regular, symlink, other

    /// The kind of a file whose `stat` mode is `mode`.
    package init(mode: mode_t) {
        switch mode & 0o170000 {
        case 0o040000: self = .directory
        case 0o100000: self = .regular
        case 0o120000: self = .symlink
        default: self = .other
        }
    }
}
