// The entry points of execnet's value format (version 2): public `dumps`/`loads` for the
// versioned form, the `Serializer` namespace with the limits, the opcode table and the
// text-decoding options that channel payloads (the unversioned form) use.

/// Encodes a value in execnet's versioned format, as Python's `execnet.dumps` does.
///
/// The result is the format version byte `0x02`, the value's program and `Q` (STOP). Sets are
/// written in their iteration order, dictionaries in insertion order. Integers below −2³¹,
/// which Python's `dumps` cannot write, use the `H` form with a leading `-`, which Python's
/// `loads` reads.
///
/// - Parameter value: The value to encode.
/// - Returns: The encoded bytes.
/// - Throws: ``SerializerError``: ``SerializerError/Code/tooLarge`` for a string, byte
///   string or container with more than 2³¹−1 bytes or items, or an integer with more than 4,300
///   digits; ``SerializerError/Code/tooDeep`` for containers nested deeper than
///   ``Serializer/maximumDepth``; ``SerializerError/Code/unhashable`` for a list, dict or set
///   used as a dictionary key or set member.
public func dumps(_ value: Value) throws(SerializerError) -> [UInt8] {
    try Serializer.encodeVersioned(value)
}

/// Decodes a value from execnet's versioned format, as Python's `execnet.loads` does.
///
/// The input must start with the version byte `0x02`. Legacy Python 2 opcodes are accepted:
/// `M` decodes as bytes here (it decodes as latin-1 text on channels), `S` as text, `G` and
/// `I` as integers. Bytes after the `Q` (STOP) are ignored, as in Python. A channel reference
/// (`B`) is an error, since there is no gateway to resolve it.
///
/// - Parameter bytes: The encoded bytes.
/// - Returns: The decoded value.
/// - Throws: ``SerializerError`` for any malformed input; never traps.
public func loads(_ bytes: [UInt8]) throws(SerializerError) -> Value {
    guard let version = bytes.first else {
        throw SerializerError(.wrongVersion, offset: 0, "empty input: no format version byte")
    }
    guard version == Serializer.formatVersion else {
        throw SerializerError(.wrongVersion, offset: 0, "wrong format version 0x\(String(version, radix: 16)), expected 0x02")
    }
    do {
        return try bytes.withUnsafeBytes { raw in
            try Serializer.decodeInternal(
                UnsafeRawBufferPointer(rebasing: raw[1...]), options: .loadsDefault,
                resolveChannel: nil, baseOffset: 1)
        }
    } catch let error as SerializerError {
        throw error
    } catch {
        // No resolver is given, so only serializer errors can come out; keep the type anyway.
        throw SerializerError(.channelOutsideGateway, "\(error)")
    }
}

/// The namespace of execnet's value format: limits, opcodes, and the unversioned codec that
/// channel payloads use.
public enum Serializer {
    /// The format version byte that starts the versioned form (`dumps`/`loads`).
    public static let formatVersion: UInt8 = 0x02

    /// The deepest container nesting the codec accepts, in both directions: 3,000 levels.
    ///
    /// A list holding a list holding an int has depth 2. Encoding and decoding use explicit
    /// stacks, so the limit is not about the codec itself: it keeps the values it produces safe
    /// for the recursive operations of `Value` and of the code that receives them
    /// (deinitialization, `==`, hashing, `description`, Codable decoding). In a release build those
    /// take about 150 bytes of thread stack per level, so a value at the limit needs under 0.5 MiB;
    /// debug builds need up to ten times more. Python's execnet encodes recursively and cannot
    /// produce more than its recursion limit (1,000 by default) allows. Deeper input fails with
    /// ``SerializerError/Code/tooDeep``.
    public static let maximumDepth = 3_000

    /// The largest length or count the format can express (`Int32.max`).
    public static let maximumCount = Int(Int32.max)

    /// How text payloads decode, mirroring Python execnet's `strconfig` pair.
    @usableFromInline package struct StringOptions: Hashable, Sendable {
        /// Python's `py2str_as_py3str`: decode `M` (legacy byte string) as latin-1 text when
        /// `true`, keep it as bytes when `false`.
        @usableFromInline package var py2strAsPy3str: Bool
        /// Python's `py3str_as_py2str`: keep `N` (text) payloads as bytes instead of decoding UTF-8.
        @usableFromInline package var py3strAsPy2str: Bool

        /// Creates options.
        ///
        /// - Parameters:
        ///   - py2strAsPy3str: Decode `M` as latin-1 text.
        ///   - py3strAsPy2str: Keep `N` payloads as bytes.
        @inlinable package init(py2strAsPy3str: Bool, py3strAsPy2str: Bool) {
            self.py2strAsPy3str = py2strAsPy3str
            self.py3strAsPy2str = py3strAsPy2str
        }

        /// The defaults of channels and gateways: `M` as text, `N` as text.
        @inlinable package static var channelDefault: StringOptions { StringOptions(py2strAsPy3str: true, py3strAsPy2str: false) }
        /// The defaults of plain `loads`: `M` as bytes, `N` as text.
        package static let loadsDefault = StringOptions(py2strAsPy3str: false, py3strAsPy2str: false)
    }

    /// The opcode bytes of format version 2.
    @usableFromInline enum Opcode {
        static let buildTuple = UInt8(ascii: "@")
        static let bytes = UInt8(ascii: "A")
        static let channel = UInt8(ascii: "B")
        static let `false` = UInt8(ascii: "C")
        static let float = UInt8(ascii: "D")
        static let frozenSet = UInt8(ascii: "E")
        @inlinable static var int: UInt8 { UInt8(ascii: "F") }
        static let long = UInt8(ascii: "G")
        static let longInt = UInt8(ascii: "H")
        static let longLong = UInt8(ascii: "I")
        static let newDict = UInt8(ascii: "J")
        static let newList = UInt8(ascii: "K")
        static let none = UInt8(ascii: "L")
        static let py2String = UInt8(ascii: "M")
        static let py3String = UInt8(ascii: "N")
        static let set = UInt8(ascii: "O")
        static let setItem = UInt8(ascii: "P")
        @inlinable static var stop: UInt8 { UInt8(ascii: "Q") }
        static let `true` = UInt8(ascii: "R")
        static let unicode = UInt8(ascii: "S")
        static let complex = UInt8(ascii: "T")
    }
}
