// The single error type of the value serializer: what went wrong (a code), where in the input
// (a byte offset, when decoding) and a human-readable message. Every failure of `dumps`, `loads`
// and the channel-payload codec surfaces as a `SerializerError`, never as a trap.

/// An error raised while encoding or decoding a ``Value``.
///
/// Python execnet raises a mix of exception types for malformed input (`LoadError`, `EOFError`,
/// `struct.error`, `UnicodeDecodeError`, …). The port maps all of them to this one type and
/// tells them apart by ``code``. Two errors are equal when their codes are equal; the offset and
/// the message are diagnostics only.
public struct SerializerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category of a ``SerializerError``.
    ///
    /// The set of codes may grow; compare against the static members (`error.code == .truncated`)
    /// rather than switching exhaustively.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: UInt8, Hashable, Sendable {
            case truncated, wrongVersion, unknownOpcode, invalidUTF8, invalidInteger
            case stackMismatch, invalidSetItem, unhashable, channelOutsideGateway
            case tooDeep, tooLarge, unencodable, negativeCount, pythonDuplicate, io
        }

        private let kind: Kind

        private init(_ kind: Kind) {
            self.kind = kind
        }

        /// The input ended before `STOP`, inside a payload, or a length exceeds the remaining bytes.
        public static let truncated = Code(.truncated)
        /// The versioned form does not start with the format version byte `0x02`.
        public static let wrongVersion = Code(.wrongVersion)
        /// A byte in opcode position is not one of the opcodes `@`…`T`.
        public static let unknownOpcode = Code(.unknownOpcode)
        /// A text payload (`N`, `S`) is not valid UTF-8.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// The text of an `H`/`I` integer is not a decimal integer.
        public static let invalidInteger = Code(.invalidInteger)
        /// The stack does not hold what an instruction needs (STOP with 0 or ≥ 2 values, a count
        /// larger than the stack, `SETITEM` with fewer than three entries).
        public static let stackMismatch = Code(.stackMismatch)
        /// `SETITEM` on something that is not a list or dict, with a bad list index, or a list
        /// left with unfilled slots.
        public static let invalidSetItem = Code(.invalidSetItem)
        /// A list, dict or set (or a tuple holding one) used as a dict key or set member.
        public static let unhashable = Code(.unhashable)
        /// A channel reference (`B`) where no gateway can resolve it, such as plain `loads`.
        public static let channelOutsideGateway = Code(.channelOutsideGateway)
        /// Containers nested deeper than ``Serializer/maximumDepth``.
        public static let tooDeep = Code(.tooDeep)
        /// A length or count beyond the format's limits (2³¹−1 items, 4,300 integer digits).
        public static let tooLarge = Code(.tooLarge)
        /// A value the format cannot carry, such as text that cannot be encoded.
        public static let unencodable = Code(.unencodable)
        /// A negative length or count.
        public static let negativeCount = Code(.negativeCount)
        /// A Swift-built dict or set holds two keys or members that differ structurally but that
        /// Python holds equal (`1`, `True` and `1.0`; `0.0` and `-0.0`; `(1,)` and `(True,)`):
        /// Python would keep only one, so encoding refuses rather than lose the other.
        public static let pythonDuplicate = Code(.pythonDuplicate)
        /// Reading or writing a file descriptor failed (``dump(_:to:)``, ``load(from:)``).
        public static let io = Code(.io)

        /// The code's name, such as `truncated`.
        public var description: String {
            switch kind {
            case .truncated: "truncated"
            case .wrongVersion: "wrongVersion"
            case .unknownOpcode: "unknownOpcode"
            case .invalidUTF8: "invalidUTF8"
            case .invalidInteger: "invalidInteger"
            case .stackMismatch: "stackMismatch"
            case .invalidSetItem: "invalidSetItem"
            case .unhashable: "unhashable"
            case .channelOutsideGateway: "channelOutsideGateway"
            case .tooDeep: "tooDeep"
            case .tooLarge: "tooLarge"
            case .unencodable: "unencodable"
            case .negativeCount: "negativeCount"
            case .pythonDuplicate: "pythonDuplicate"
            case .io: "io"
            }
        }
    }

    /// What went wrong.
    public let code: Code
    /// The byte offset in the decoded input where the problem was found (the offset of the
    /// opcode or payload at fault), or `nil` when encoding or when no position applies.
    public let offset: Int?
    /// A human-readable explanation.
    public let message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The category.
    ///   - offset: The byte offset in the input, if the error comes from decoding.
    ///   - message: A human-readable explanation.
    public init(_ code: Code, offset: Int? = nil, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    /// Compares two errors by ``code`` only.
    ///
    /// - Parameters:
    ///   - lhs: An error.
    ///   - rhs: Another error.
    /// - Returns: `true` when both have the same code.
    public static func == (lhs: SerializerError, rhs: SerializerError) -> Bool {
        lhs.code == rhs.code
    }

    /// Hashes the ``code`` only, consistent with `==`.
    ///
    /// - Parameter hasher: The hasher to feed.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
    }

    /// A readable summary, such as `serializer error (truncated) at byte 5: blob length 16 exceeds the 3 remaining bytes`.
    public var description: String {
        if let offset {
            return "serializer error (\(code)) at byte \(offset): \(message)"
        }
        return "serializer error (\(code)): \(message)"
    }
}
