// The Codable bridge, decoding side: reads any `Decodable` out of a `Value`. Dicts serve keyed
// containers, lists and tuples unkeyed ones; integers are range-checked; failures are Swift's
// `DecodingError` with the coding path of the offending value.

import OrderedCollections

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
        try _ValueDecoder(value: value, codingPath: [], userInfo: userInfo).unbox(T.self)
    }
}

private struct _ValueDecoder: Decoder {
    let value: Value
    let codingPath: [any CodingKey]
    let sendableUserInfo: [CodingUserInfoKey: any Sendable]

    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    init(value: Value, codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: any Sendable]) {
        self.value = value
        self.codingPath = codingPath
        self.sendableUserInfo = userInfo
    }

    func child(_ value: Value, _ key: any CodingKey) -> _ValueDecoder {
        _ValueDecoder(value: value, codingPath: codingPath + [key], userInfo: sendableUserInfo)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .dict(let entries) = value else {
            throw mismatch(OrderedDictionary<Value, Value>.self, "a dict")
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
            throw mismatch([Value].self, "a list, tuple or set")
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        self
    }

    func mismatch(_ type: Any.Type, _ expected: String) -> DecodingError {
        if case .none = value {
            return .valueNotFound(type, .init(codingPath: codingPath, debugDescription: "Expected \(expected) but found None."))
        }
        return .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "Expected \(expected) but found \(Serializer.kindName(value))."))
    }

    /// Decodes `T` from this decoder's value, with the special cases first.
    func unbox<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == Value.self, let same = value as? T { return same }
        if T.self == [UInt8].self, case .bytes(let bytes) = value, let typed = bytes as? T { return typed }
        return try T(from: self)
    }

    func unboxInteger<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let converted: T?
        switch value {
        case .int(let i): converted = T(exactly: i)
        case .bigInt(let b):
            if let u = b.uint64Value { converted = T(exactly: u) } else if let i = b.int64Value { converted = T(exactly: i) } else { converted = nil }
        default: throw mismatch(T.self, "an int")
        }
        guard let converted else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "Number \(value) does not fit in \(T.self)."))
        }
        return converted
    }

    func unboxDouble() throws -> Double {
        switch value {
        case .float(let d): return d
        case .int(let i): return Double(i)
        case .bigInt(let b): return Double(b.description) ?? .nan
        default: throw mismatch(Double.self, "a float")
        }
    }
}

extension _ValueDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { value.isNone }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(Bool.self, "a bool") }
        return b
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let s) = value else { throw mismatch(String.self, "a str") }
        return s
    }

    func decode(_ type: Double.Type) throws -> Double { try unboxDouble() }

    func decode(_ type: Float.Type) throws -> Float {
        let d = try unboxDouble()
        guard !d.isFinite || d.magnitude <= Double(Float.greatestFiniteMagnitude) else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "Number \(value) does not fit in Float."))
        }
        return Float(d)
    }

    func decode(_ type: Int.Type) throws -> Int { try unboxInteger(Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try unboxInteger(Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try unboxInteger(Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try unboxInteger(Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try unboxInteger(Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try unboxInteger(UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try unboxInteger(UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try unboxInteger(UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try unboxInteger(UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try unboxInteger(UInt64.self) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try unbox(T.self) }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: _ValueDecoder
    let entries: OrderedDictionary<Value, Value>

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

    private func child(_ key: Key) throws -> _ValueDecoder {
        guard let found = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value for key \(key.stringValue)."))
        }
        return decoder.child(found, key)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        lookup(key)?.isNone ?? true
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decode(Bool.self) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decode(String.self) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decode(Double.self) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try child(key).decode(Float.self) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decode(Int.self) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decode(Int8.self) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decode(Int16.self) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decode(Int32.self) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decode(Int64.self) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decode(UInt.self) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decode(UInt8.self) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decode(UInt16.self) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decode(UInt32.self) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decode(UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).unbox(T.self) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
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

    private mutating func next(_ type: Any.Type) throws -> _ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(
                codingPath: codingPath + [ValueCodingKey(intValue: currentIndex)],
                debugDescription: "Unkeyed container is at end."))
        }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], ValueCodingKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Value.self, .init(
                codingPath: codingPath + [ValueCodingKey(intValue: currentIndex)],
                debugDescription: "Unkeyed container is at end."))
        }
        if items[currentIndex].isNone {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type).decode(Bool.self) }
    mutating func decode(_ type: String.Type) throws -> String { try next(type).decode(String.self) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type).decode(Double.self) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type).decode(Float.self) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type).decode(Int.self) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type).decode(Int8.self) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type).decode(Int16.self) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type).decode(Int32.self) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type).decode(Int64.self) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type).decode(UInt.self) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type).decode(UInt8.self) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type).decode(UInt16.self) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type).decode(UInt32.self) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type).decode(UInt64.self) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type).unbox(T.self) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(OrderedDictionary<Value, Value>.self).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next([Value].self).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        try next(Value.self)
    }
}
