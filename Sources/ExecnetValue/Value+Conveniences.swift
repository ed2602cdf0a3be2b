// Conveniences for building and reading `Value`s: literal conformances, integer construction
// that normalizes to `.int` when the number fits `Int64`, typed accessors that return `nil`
// for other kinds, and subscripts into lists, tuples and dictionaries.

extension Value {
    /// Creates an integer value from any binary integer: ``int(_:)`` when it fits `Int64`,
    /// otherwise ``bigInt(_:)``.
    ///
    /// - Parameter value: The integer, such as a `UInt64` or an `Int128`.
    public init(_ value: some BinaryInteger) {
        if let small = Int64(exactly: value) {
            self = .int(small)
        } else {
            self = .bigInt(BigInteger(value))
        }
    }

    /// Creates an integer value from a big integer, normalized: ``int(_:)`` when it fits `Int64`.
    ///
    /// - Parameter value: The integer.
    /// - Returns: `.int` or `.bigInt`.
    public static func integer(_ value: BigInteger) -> Value {
        if let small = value.int64Value { return .int(small) }
        return .bigInt(value)
    }

    /// Parses decimal text with Python's `int()` rules into a normalized integer value.
    ///
    /// This is the factory the decoder uses for `H`/`I` payloads. Surrounding ASCII whitespace,
    /// one leading sign and `_` between digits are accepted; at most
    /// ``BigInteger/maximumDecimalDigits`` digits.
    ///
    /// - Parameter text: Decimal text such as `"-2147483649"`.
    /// - Returns: ``int(_:)`` when the number fits `Int64`, otherwise ``bigInt(_:)``.
    /// - Throws: ``SerializerError`` with code ``SerializerError/Code/invalidInteger`` or
    ///   ``SerializerError/Code/tooLarge``.
    public static func integer(fromDecimal text: some StringProtocol) throws(SerializerError) -> Value {
        var text = String(text)
        let result: Result<Value, SerializerError> = text.withUTF8 { buffer in
            DecimalText.scan(buffer).map { $0.value(in: buffer) }
        }
        return try result.get()
    }

    /// Whether the value is ``none``.
    public var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// The boolean of a ``bool(_:)`` value; `nil` for every other kind (integers included).
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The integer of an ``int(_:)`` (or a ``bigInt(_:)`` within `Int`'s range); `nil` otherwise.
    /// Booleans are not integers here.
    public var intValue: Int? {
        switch self {
        case .int(let i): Int(exactly: i)
        case .bigInt(let b): b.int64Value.flatMap { Int(exactly: $0) }
        default: nil
        }
    }

    /// The integer of an ``int(_:)`` or ``bigInt(_:)`` value as a ``BigInteger``; `nil` otherwise.
    public var bigIntegerValue: BigInteger? {
        switch self {
        case .int(let i): BigInteger(i)
        case .bigInt(let b): b
        default: nil
        }
    }

    /// The number of a ``float(_:)`` value, or of an integer value converted to the nearest
    /// `Double`; `nil` for other kinds.
    public var doubleValue: Double? {
        switch self {
        case .float(let d): d
        case .int(let i): Double(i)
        case .bigInt(let b): Double(b.description)
        default: nil
        }
    }

    /// The complex number of a ``complex(_:)`` value; `nil` otherwise.
    public var complexValue: Complex? {
        if case .complex(let c) = self { return c }
        return nil
    }

    /// The text of a ``string(_:)`` value; `nil` otherwise (byte strings included).
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The bytes of a ``bytes(_:)`` value; `nil` otherwise.
    public var bytesValue: [UInt8]? {
        if case .bytes(let b) = self { return b }
        return nil
    }

    /// The items of a ``list(_:)`` or ``tuple(_:)`` value; `nil` otherwise.
    public var listValue: [Value]? {
        switch self {
        case .list(let items), .tuple(let items): items
        default: nil
        }
    }

    /// The entries of a ``dict(_:)`` value; `nil` otherwise.
    public var dictValue: ValueDictionary? {
        if case .dict(let d) = self { return d }
        return nil
    }

    /// The members of a ``set(_:)`` or ``frozenSet(_:)`` value; `nil` otherwise.
    public var setValue: ValueSet? {
        switch self {
        case .set(let s), .frozenSet(let s): s
        default: nil
        }
    }

    /// The channel of a ``channel(_:)`` value; `nil` otherwise.
    public var channelValue: Channel? {
        if case .channel(let c) = self { return c }
        return nil
    }

    /// The item at a position of a list or tuple.
    ///
    /// - Parameter index: A zero-based position.
    /// - Returns: The item, or `nil` when the value is not a list or tuple or the index is out of range.
    public subscript(index: Int) -> Value? {
        guard let items = listValue, items.indices.contains(index) else { return nil }
        return items[index]
    }

    /// The entry of a dictionary under a key of any kind.
    ///
    /// - Parameter key: The key, such as `.int(3)` or `.tuple([1, 2])`.
    /// - Returns: The entry, or `nil` when the value is not a dictionary or has no such key.
    public subscript(key: Value) -> Value? {
        dictValue?[key]
    }

    /// The entry of a dictionary under a text key.
    ///
    /// - Parameter key: The text key.
    /// - Returns: The entry, or `nil` when the value is not a dictionary or has no such key.
    public subscript(key: String) -> Value? {
        dictValue?[.string(key)]
    }
}

extension Value: ExpressibleByNilLiteral {
    /// Creates ``none`` from `nil`.
    ///
    /// - Parameter nilLiteral: The `nil` literal.
    public init(nilLiteral: ()) {
        self = .none
    }
}

extension Value: ExpressibleByBooleanLiteral {
    /// Creates a ``bool(_:)`` value from `true` or `false`.
    ///
    /// - Parameter value: The boolean literal.
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }
}

extension Value: ExpressibleByIntegerLiteral {
    /// Creates an ``int(_:)`` value from an integer literal.
    ///
    /// - Parameter value: The integer literal.
    public init(integerLiteral value: Int64) {
        self = .int(value)
    }
}

extension Value: ExpressibleByFloatLiteral {
    /// Creates a ``float(_:)`` value from a float literal.
    ///
    /// - Parameter value: The float literal.
    public init(floatLiteral value: Double) {
        self = .float(value)
    }
}

extension Value: ExpressibleByStringLiteral {
    /// Creates a ``string(_:)`` value from a string literal.
    ///
    /// - Parameter value: The string literal.
    public init(stringLiteral value: String) {
        self = .string(value)
    }
}

extension Value: ExpressibleByArrayLiteral {
    /// Creates a ``list(_:)`` value from an array literal.
    ///
    /// - Parameter elements: The items.
    public init(arrayLiteral elements: Value...) {
        self = .list(elements)
    }
}

extension Value: ExpressibleByDictionaryLiteral {
    /// Creates a ``dict(_:)`` value from a dictionary literal, in the literal's order.
    /// A repeated key keeps its first position and its last value, as in Python.
    ///
    /// - Parameter elements: The key-value pairs.
    public init(dictionaryLiteral elements: (Value, Value)...) {
        var dict = ValueDictionary(minimumCapacity: elements.count)
        for (key, value) in elements {
            dict[key] = value
        }
        self = .dict(dict)
    }
}
