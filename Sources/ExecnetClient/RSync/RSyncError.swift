// What RSync reports: a typed error per failing target, the error of a whole send, and progress.

import ExecnetCore

/// Why copying a directory to one target (or the whole ``RSync/send(progress:)``) failed.
///
/// Compare by ``code``: two errors with the same code are equal whatever their messages.
public struct RSyncError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case unsafePath, destinationNotDirectory, destinationUnsafe, noSpace, io, protocolViolation, tooLarge
            case connectionLost, remote, sourceUnreadable, noTargets, alreadySent, cancelled
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// A path that is absolute, has `..` or an empty component, or leads through a link.
        public static let unsafePath = Code(.unsafePath)
        /// The destination exists and is not a directory.
        public static let destinationNotDirectory = Code(.destinationNotDirectory)
        /// The destination is a symbolic link, belongs to another user or is writable by others.
        public static let destinationUnsafe = Code(.destinationUnsafe)
        /// The destination's file system has no room for a file.
        public static let noSpace = Code(.noSpace)
        /// A system call failed on the remote side or reading the source; the message has errno's text.
        public static let io = Code(.io)
        /// The peer sent something the rsync task's protocol does not allow.
        public static let protocolViolation = Code(.protocolViolation)
        /// The source list is longer than a transfer allows.
        public static let tooLarge = Code(.tooLarge)
        /// The gateway or its channel ended during the transfer.
        public static let connectionLost = Code(.connectionLost)
        /// The remote task failed otherwise (for example: the worker has no rsync task).
        public static let remote = Code(.remote)
        /// The source directory (or a file in it) cannot be read.
        public static let sourceUnreadable = Code(.sourceUnreadable)
        /// ``RSync/send(progress:)`` was called without targets.
        public static let noTargets = Code(.noTargets)
        /// ``RSync/send(progress:)`` was called a second time.
        public static let alreadySent = Code(.alreadySent)
        /// The task calling ``RSync/send(progress:)`` was cancelled.
        public static let cancelled = Code(.cancelled)

        init(wire: RSyncWireError.Code) {
            switch wire {
            case .unsafePath: self = .unsafePath
            case .destinationNotDirectory: self = .destinationNotDirectory
            case .destinationUnsafe: self = .destinationUnsafe
            case .noSpace: self = .noSpace
            case .io: self = .io
            case .protocolViolation: self = .protocolViolation
            case .tooLarge: self = .tooLarge
            }
        }

        public var description: String {
            switch kind {
            case .unsafePath: "unsafePath"
            case .destinationNotDirectory: "destinationNotDirectory"
            case .destinationUnsafe: "destinationUnsafe"
            case .noSpace: "noSpace"
            case .io: "io"
            case .protocolViolation: "protocolViolation"
            case .tooLarge: "tooLarge"
            case .connectionLost: "connectionLost"
            case .remote: "remote"
            case .sourceUnreadable: "sourceUnreadable"
            case .noTargets: "noTargets"
            case .alreadySent: "alreadySent"
            case .cancelled: "cancelled"
            }
        }
    }

    /// The kind of failure.
    public let code: Code
    /// A sentence for people; never parse it.
    public let message: String
    /// The target that failed, or `nil` for a failure of the whole send.
    public let target: RSync.Target?
    /// The relative path involved, if any.
    public let path: String?
    /// Whether the remote side reported the failure (else this side found it).
    public let isRemote: Bool

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: A sentence for people.
    ///   - target: The target that failed, if any.
    ///   - path: The relative path involved, if any.
    ///   - isRemote: Whether the remote side reported it.
    public init(_ code: Code, _ message: String, target: RSync.Target? = nil, path: String? = nil, isRemote: Bool = false) {
        self.code = code
        self.message = message
        self.target = target
        self.path = path
        self.isRemote = isRemote
    }

    init(wire: RSyncWireError, target: RSync.Target?, isRemote: Bool) {
        self.init(Code(wire: wire.code), wire.message, target: target, path: wire.path, isRemote: isRemote)
    }

    public var description: String {
        var text = "RSyncError.\(code): \(message)"
        if let path { text += " [path \(path)]" }
        if let target { text += " [\(target)\(isRemote ? ", reported by the worker" : "")]" }
        return text
    }

    /// Errors are equal when their codes are equal.
    public static func == (lhs: RSyncError, rhs: RSyncError) -> Bool { lhs.code == rhs.code }
}

/// The error of ``RSync/send(progress:)``: one ``RSyncError`` per target that failed (the other
/// targets completed), or a single error without a target when nothing was sent.
public struct RSyncSendError: Error, Sendable, CustomStringConvertible {
    /// The failures, in the order the targets were added.
    public let failures: [RSyncError]
    /// The targets that completed.
    public let completed: [RSync.Target]

    public var description: String {
        "RSyncSendError: \(failures.count) target(s) failed: " + failures.map(\.description).joined(separator: "; ")
    }
}

/// A progress report of ``RSync/send(progress:)`` for one target.
public struct RSyncProgress: Sendable, CustomStringConvertible {
    /// What happened.
    public enum Event: Sendable, Equatable {
        /// The target answered which files it lacks or has in another version; the totals are known.
        case planned
        /// A chunk of a file went out.
        case chunkSent
        /// A file went out completely (``RSyncProgress/path`` names it).
        case fileSent
        /// The target had a file already (same SHA-256); only its mode and time were set.
        case fileUnchanged
        /// The target finished.
        case finished
    }

    /// The target this report is about.
    public let target: RSync.Target
    /// What happened.
    public let event: Event
    /// The file involved (for `fileSent`, `fileUnchanged`, `chunkSent`).
    public let path: String?
    /// Files the target asked about: to send or to compare.
    public let filesPlanned: Int
    /// Bytes of the files the target asked about.
    public let bytesPlanned: Int64
    /// Files sent so far.
    public let filesSent: Int
    /// Content bytes sent so far.
    public let bytesSent: Int64
    /// Files found unchanged so far (not sent).
    public let filesUnchanged: Int

    public var description: String {
        "\(target): \(event) \(path ?? "") files \(filesSent)/\(filesPlanned) bytes \(bytesSent)/\(bytesPlanned)"
    }
}
