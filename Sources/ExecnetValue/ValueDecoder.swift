// The Codable bridge, decoding side: reads any `Decodable` out of a `Value`. Dicts serve keyed
// containers, lists and tuples unkeyed ones; integers are range-checked; failures are Swift's
// `DecodingError` with the coding path of the offending value.

/// Decodes `Decodable` values from ``Value``s, the inverse of ``ValueEncoder``.
///
/// Beyond reading back what ``ValueEncoder`` writes, it reads what a Python peer naturally sends:
///
/// - keyed containers read ``Value/dict(_:)``s; a key is looked up as text, then (for integer
///   coding keys) as an ``Value/int(_:)``, so `{1: "a"}` decodes as `[Int: String]`;
/// - unkeyed containers read lists, tuples, sets and frozen sets (sets in iteration order);
/// - a missing key or a ``Value/none`` reads as `nil` for optionals (`decodeNil(forKey:)` is
///   `true` for a missing key);
/// - `[UInt8]` reads ``Value/bytes(_:)`` (or a list of small integers), ``Value`` reads the value unchanged;
/// - fixed-width integers read ``Value/int(_:)`` and ``Value/bigInt(_:)`` when the number fits the
///   type, else `DecodingError.dataCorrupted`; booleans and floats are not integers;
/// - `Double` and `Float` read floats, and integers (converted to the nearest float);
/// - `Bool` reads only ``Value/bool(_:)``, `String` only ``Value/string(_:)``.
public struct ValueDecoder: Sendable {
    /// Contextual information for the types' `init(from:)` methods.
    public var userInfo: [CodingUserInfoKey: any Sendable]

    /// Creates a decoder.
    ///
    /// - Parameter userInfo: Contextual information passed to `init(from:)` implementations.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:]) {
        self.userInfo = userInfo
    }

    /// Decodes a value of the given type from a ``Value``.
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - value: The value to read.
    /// - Returns: The decoded instance.
    /// - Throws: `DecodingError` when the value does not have the shape or range the type needs,
    ///   or whatever the type's `init(from:)` throws.
    public func decode<T: Decodable>(_ type: T.Type, from value: Value) throws -> T {
        if let direct: T = Unbox.direct(value) { return direct }
        return try _ValueDecoder(value: value, parent: nil, key: nil, userInfo: userInfo).unbox(T.self)
    }
}

/// Reads one value. `codingPath` is computed from the parent chain only when asked (errors,
/// user code), so decoding nested values allocates no path arrays.
private final class _ValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: Value
    let parent: _ValueDecoder?
    let key: (any CodingKey)?
    let sendableUserInfo: [CodingUserInfoKey: any Sendable]

    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    var codingPath: [any CodingKey] {
        var path = parent?.codingPath ?? []
        if let key { path.append(key) }
        return path
    }

    init(value: Value, parent: _ValueDecoder?, key: (any CodingKey)?, userInfo: [CodingUserInfoKey: any Sendable]) {
        self.value = value
        self.parent = parent
        self.key = key
        self.sendableUserInfo = userInfo
    }

    func child(_ value: Value, _ key: any CodingKey) -> _ValueDecoder {
        _ValueDecoder(value: value, parent: self, key: key, userInfo: sendableUserInfo)
    }

    /// Decodes `T` from a part of this decoder's value found under `key`, with the special
    /// cases (`Value`, `[UInt8]` from bytes) first.
    func decodePart<T: Decodable>(_ type: T.Type, _ part: Value, _ key: any CodingKey) throws -> T {
        if let special: T = Unbox.special(part) { return special }
        return try T(from: child(part, key))
    }

    func unbox<T: Decodable>(_ type: T.Type) throws -> T {
        if let special: T = Unbox.special(value) { return special }
        return try T(from: self)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .dict(let entries) = value else {
            throw Unbox.mismatch(value, ValueDictionary.self, "a dict", codingPath)
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self, entries: entries))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .list(let items), .tuple(let items):
            return UnkeyedContainer(decoder: self, items: items)
        case .set(let members), .frozenSet(let members):
            return UnkeyedContainer(decoder: self, items: Array(members))
        default:
            throw Unbox.mismatch(value, [Value].self, "a list, tuple or set", codingPath)
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { value.isNone }
    func decode(_ type: Bool.Type) throws -> Bool { try Unbox.bool(value) { codingPath } }
    func decode(_ type: String.Type) throws -> String { try Unbox.string(value) { codingPath } }
    func decode(_ type: Double.Type) throws -> Double { try Unbox.double(value) { codingPath } }
    func decode(_ type: Float.Type) throws -> Float { try Unbox.float(value) { codingPath } }
    func decode(_ type: Int.Type) throws -> Int { try Unbox.integer(value, Int.self) { codingPath } }
    func decode(_ type: Int8.Type) throws -> Int8 { try Unbox.integer(value, Int8.self) { codingPath } }
    func decode(_ type: Int16.Type) throws -> Int16 { try Unbox.integer(value, Int16.self) { codingPath } }
    func decode(_ type: Int32.Type) throws -> Int32 { try Unbox.integer(value, Int32.self) { codingPath } }
    func decode(_ type: Int64.Type) throws -> Int64 { try Unbox.integer(value, Int64.self) { codingPath } }
    func decode(_ type: UInt.Type) throws -> UInt { try Unbox.integer(value, UInt.self) { codingPath } }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try Unbox.integer(value, UInt8.self) { codingPath } }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try Unbox.integer(value, UInt16.self) { codingPath } }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try Unbox.integer(value, UInt32.self) { codingPath } }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try Unbox.integer(value, UInt64.self) { codingPath } }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try unbox(T.self) }
}

/// Conversions from `Value` to Swift scalars; the coding path is built only for errors.
private enum Unbox {
    /// The most common scalars read without a decoder (a typed call's `Int` or `String`, say),
    /// when the value has exactly the type's own kind; anything else takes the full path (range
    /// checks, conversions, errors), which gives the same result.
    static func direct<T>(_ value: Value) -> T? {
        switch value {
        case .int(let number) where T.self == Int.self: return Int(exactly: number) as? T
        case .string(let text) where T.self == String.self: return text as? T
        case .float(let number) where T.self == Double.self: return number as? T
        case .bool(let flag) where T.self == Bool.self: return flag as? T
        default: return special(value)
        }
    }

    static func special<T>(_ value: Value) -> T? {
        if T.self == Value.self { return value as? T }
        if T.self == [UInt8].self, case .bytes(let bytes) = value { return bytes as? T }
        return nil
    }

    static func mismatch(_ value: Value, _ type: Any.Type, _ expected: String, _ path: [any CodingKey]) -> DecodingError {
        if case .none = value {
            return .valueNotFound(type, .init(codingPath: path, debugDescription: "Expected \(expected) but found None."))
        }
        return .typeMismatch(type, .init(codingPath: path, debugDescription: "Expected \(expected) but found \(Serializer.kindName(value))."))
    }

    static func bool(_ value: Value, _ path: () -> [any CodingKey]) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(value, Bool.self, "a bool", path()) }
        return b
    }

    static func string(_ value: Value, _ path: () -> [any CodingKey]) throws -> String {
        guard case .string(let s) = value else { throw mismatch(value, String.self, "a str", path()) }
        return s
    }

    static func double(_ value: Value, _ path: () -> [any CodingKey]) throws -> Double {
        switch value {
        case .float(let d): return d
        case .int(let i): return Double(i)
        case .bigInt(let b): return Double(b.description) ?? .nan
        default: throw mismatch(value, Double.self, "a float", path())
        }
    }

    static func float(_ value: Value, _ path: () -> [any CodingKey]) throws -> Float {
        let d = try double(value, path)
        guard !d.isFinite || d.magnitude <= Double(Float.greatestFiniteMagnitude) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path(), debugDescription: "Number \(value) does not fit in Float."))
        }
        return Float(d)
    }

    static func integer<T: FixedWidthInteger>(_ value: Value, _ type: T.Type, _ path: () -> [any CodingKey]) throws -> T {
        let converted: T?
        switch value {
        case .int(let i): converted = T(exactly: i)
        case .bigInt(let b): converted = b.uint64Value.flatMap { T(exactly: $0) } ?? b.int64Value.flatMap { T(exactly: $0) }
        default: throw mismatch(value, T.self, "an int", path())
        }
        guard let converted else {
            throw DecodingError.dataCorrupted(.init(codingPath: path(), debugDescription: "Number \(value) does not fit in \(T.self)."))
        }
        return converted
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: _ValueDecoder
    let entries: ValueDictionary

    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        entries.keys.compactMap { key in
            switch key {
            case .string(let s): Key(stringValue: s)
            case .int(let i): Int(exactly: i).flatMap { Key(intValue: $0) } ?? Key(stringValue: String(i))
            default: nil
            }
        }
    }

    private func lookup(_ key: Key) -> Value? {
        if let found = entries[.string(key.stringValue)] { return found }
        if let i = key.intValue { return entries[.int(Int64(i))] }
        return nil
    }

    func contains(_ key: Key) -> Bool { lookup(key) != nil }

    private func found(_ key: Key) throws -> Value {
        guard let found = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value for key \(key.stringValue)."))
        }
        return found
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        lookup(key)?.isNone ?? true
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Unbox.bool(try found(key)) { codingPath + [key] } }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try Unbox.string(try found(key)) { codingPath + [key] } }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Unbox.double(try found(key)) { codingPath + [key] } }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try Unbox.float(try found(key)) { codingPath + [key] } }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Unbox.integer(try found(key), Int.self) { codingPath + [key] } }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Unbox.integer(try found(key), Int8.self) { codingPath + [key] } }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Unbox.integer(try found(key), Int16.self) { codingPath + [key] } }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Unbox.integer(try found(key), Int32.self) { codingPath + [key] } }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Unbox.integer(try found(key), Int64.self) { codingPath + [key] } }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Unbox.integer(try found(key), UInt.self) { codingPath + [key] } }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Unbox.integer(try found(key), UInt8.self) { codingPath + [key] } }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Unbox.integer(try found(key), UInt16.self) { codingPath + [key] } }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Unbox.integer(try found(key), UInt32.self) { codingPath + [key] } }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Unbox.integer(try found(key), UInt64.self) { codingPath + [key] } }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decoder.decodePart(T.self, try found(key), key) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder.child(try found(key), key).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(try found(key), key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        let key = ValueCodingKey.super
        return decoder.child(entries[.string(key.stringValue)] ?? .none, key)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.child(lookup(key) ?? .none, key)
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: _ValueDecoder
    let items: [Value]
    var currentIndex = 0

    init(decoder: _ValueDecoder, items: [Value]) {
        self.decoder = decoder
        self.items = items
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private var currentKey: ValueCodingKey { ValueCodingKey(intValue: currentIndex) }

    /// The next item; advances past it.
    private mutating func next(_ type: Any.Type) throws -> Value {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(
                codingPath: codingPath + [currentKey], debugDescription: "Unkeyed container is at end."))
        }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    /// The path of the item just returned by `next`, for errors.
    private var lastPath: [any CodingKey] { codingPath + [ValueCodingKey(intValue: currentIndex - 1)] }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Value.self, .init(
                codingPath: codingPath + [currentKey], debugDescription: "Unkeyed container is at end."))
        }
        if items[currentIndex].isNone {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try Unbox.bool(try next(type)) { lastPath } }
    mutating func decode(_ type: String.Type) throws -> String { try Unbox.string(try next(type)) { lastPath } }
    mutating func decode(_ type: Double.Type) throws -> Double { try Unbox.double(try next(type)) { lastPath } }
    mutating func decode(_ type: Float.Type) throws -> Float { try Unbox.float(try next(type)) { lastPath } }
    mutating func decode(_ type: Int.Type) throws -> Int { try Unbox.integer(try next(type), Int.self) { lastPath } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try Unbox.integer(try next(type), Int8.self) { lastPath } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try Unbox.integer(try next(type), Int16.self) { lastPath } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try Unbox.integer(try next(type), Int32.self) { lastPath } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try Unbox.integer(try next(type), Int64.self) { lastPath } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try Unbox.integer(try next(type), UInt.self) { lastPath } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try Unbox.integer(try next(type), UInt8.self) { lastPath } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try Unbox.integer(try next(type), UInt16.self) { lastPath } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try Unbox.integer(try next(type), UInt32.self) { lastPath } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try Unbox.integer(try next(type), UInt64.self) { lastPath } }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let key = currentKey
        return try decoder.decodePart(T.self, try next(type), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let key = currentKey
        return try decoder.child(try next(ValueDictionary.self), key).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let key = currentKey
        return try decoder.child(try next([Value].self), key).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let key = currentKey
        return decoder.child(try next(Value.self), key)
    }
}
