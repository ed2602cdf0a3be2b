// The Codable bridge, encoding side: turns any `Encodable` into a `Value` (and so into
// execnet's wire format). Containers are built as small reference trees while the value's
// `encode(to:)` runs, then resolved into a `Value` at the end.

/// Encodes `Encodable` values as ``Value``s, ready for ``dumps(_:)`` or a channel.
///
/// The mapping (the inverse of ``ValueDecoder``'s):
///
/// | Swift | Value |
/// |---|---|
/// | keyed container (structs, classes, enums with associated values, `[String: T]`) | ``Value/dict(_:)`` with text keys, in encoding order |
/// | unkeyed container (arrays, sets) | ``Value/list(_:)`` |
/// | `[UInt8]` (top level or nested) | ``Value/bytes(_:)`` |
/// | ``Value`` | itself, unchanged |
/// | `nil` in a keyed container | the key is absent (synthesized code uses `encodeIfPresent`) |
/// | `nil` elsewhere (`encodeNil`) | ``Value/none`` |
/// | `Bool` | ``Value/bool(_:)`` |
/// | `Int`, `Int8`…`Int64`, `UInt`, `UInt8`…`UInt64` | ``Value/int(_:)``, or ``Value/bigInt(_:)`` above `Int64.max` |
/// | `Float`, `Double` | ``Value/float(_:)`` |
/// | `String` | ``Value/string(_:)`` |
/// | `superEncoder()` | the key `"super"` (or the given key, or the next list item) |
///
/// Enums with associated values use the synthesized form: `{"caseName": {"label": value}}`,
/// with `_0`, `_1` for unlabeled values. Dictionaries whose keys are `Int` become text keys
/// (`"1"`), as with every Codable encoder; other key types become a flat `[k0, v0, k1, v1…]` list.
public struct ValueEncoder: Sendable {
    /// Contextual information for the values' `encode(to:)` methods.
    public var userInfo: [CodingUserInfoKey: any Sendable]

    /// Creates an encoder.
    ///
    /// - Parameter userInfo: Contextual information passed to `encode(to:)` implementations.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:]) {
        self.userInfo = userInfo
    }

    /// Encodes a value into a ``Value``.
    ///
    /// - Parameter value: The value to encode.
    /// - Returns: The encoded value (see the mapping in ``ValueEncoder``).
    /// - Throws: Whatever the value's `encode(to:)` throws, typically `EncodingError`.
    public func encode(_ value: some Encodable) throws -> Value {
        try _ValueEncoder.box(value, userInfo: userInfo)
    }
}

/// A node of the tree being encoded.
private enum Pending {
    case value(Value)
    case list(ListBox)
    case dict(DictBox)
    case encoder(_ValueEncoder)

    func resolve() -> Value {
        switch self {
        case .value(let v): v
        case .list(let box): box.resolve()
        case .dict(let box): box.resolve()
        case .encoder(let encoder): encoder.resolve()
        }
    }
}

/// An unkeyed container's items: finished values in place, the rest (nested containers and
/// encoders) as placeholders filled in by `resolve()`.
private final class ListBox {
    var items: [Value] = []
    var pending: [(index: Int, node: Pending)] = []

    func append(_ node: Pending) {
        if case .value(let v) = node {
            items.append(v)
        } else {
            pending.append((items.count, node))
            items.append(.none)
        }
    }

    func resolve() -> Value {
        for (index, node) in pending {
            items[index] = node.resolve()
        }
        pending = []
        return .list(items)
    }
}

/// A keyed container's entries, like `ListBox`. A key set twice keeps its first position and
/// its last value.
private final class DictBox {
    var entries: ValueDictionary = [:]
    var pending: [(key: Value, node: Pending)] = []

    func set(_ key: Value, _ node: Pending) {
        if !pending.isEmpty { pending.removeAll { $0.key == key } }
        if case .value(let v) = node {
            entries[key] = v
        } else {
            entries[key] = Value.none
            pending.append((key, node))
        }
    }

    func resolve() -> Value {
        for (key, node) in pending {
            entries[key] = node.resolve()
        }
        pending = []
        return .dict(entries)
    }
}

private final class _ValueEncoder: Encoder {
    /// The encoder this one encodes a part for, the keys of containers in between, and the
    /// part's key: `codingPath` is computed from them only when asked, never eagerly.
    let parent: _ValueEncoder?
    let prefix: [any CodingKey]
    let key: (any CodingKey)?
    let sendableUserInfo: [CodingUserInfoKey: any Sendable]
    var storage: Pending?

    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    var codingPath: [any CodingKey] {
        var path = parent?.codingPath ?? []
        path += prefix
        if let key { path.append(key) }
        return path
    }

    init(parent: _ValueEncoder?, prefix: [any CodingKey], key: (any CodingKey)?, userInfo: [CodingUserInfoKey: any Sendable]) {
        self.parent = parent
        self.prefix = prefix
        self.key = key
        self.sendableUserInfo = userInfo
    }

    func resolve() -> Value {
        storage?.resolve() ?? .dict([:])
    }

    /// Encodes a value: special cases first, then the value's own `encode(to:)`.
    static func box<T: Encodable>(_ value: T, userInfo: [CodingUserInfoKey: any Sendable]) throws -> Value {
        if let direct = directValue(value) { return direct }
        let encoder = _ValueEncoder(parent: nil, prefix: [], key: nil, userInfo: userInfo)
        try value.encode(to: encoder)
        return encoder.resolve()
    }

    /// The values encoded without running `encode(to:)`: the special cases (`Value`, `[UInt8]`)
    /// and the most common primitives. Compares metatypes first, so misses are cheap.
    private static func directValue<T: Encodable>(_ value: T) -> Value? {
        if T.self == Value.self { return value as? Value }
        if T.self == [UInt8].self { return (value as? [UInt8]).map(Value.bytes) }
        if T.self == String.self { return (value as? String).map(Value.string) }
        if T.self == Int.self { return (value as? Int).map { .int(Int64($0)) } }
        if T.self == Double.self { return (value as? Double).map(Value.float) }
        if T.self == Bool.self { return (value as? Bool).map(Value.bool) }
        return nil
    }

    /// Encodes a part of this encoder's value, found under `prefix` + `key`; with neither, the
    /// single value itself (same path as this encoder).
    func pending<T: Encodable>(_ value: T, prefix: [any CodingKey], key: (any CodingKey)?) throws -> Pending {
        if let direct = Self.directValue(value) { return .value(direct) }
        let encoder = key == nil && prefix.isEmpty
            ? _ValueEncoder(parent: parent, prefix: self.prefix, key: self.key, userInfo: sendableUserInfo)
            : _ValueEncoder(parent: self, prefix: prefix, key: key, userInfo: sendableUserInfo)
        try value.encode(to: encoder)
        return .encoder(encoder)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: DictBox
        if case .dict(let existing) = storage {
            box = existing
        } else {
            box = DictBox()
            storage = .dict(box)
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(encoder: self, box: box, prefix: []))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: ListBox
        if case .list(let existing) = storage {
            box = existing
        } else {
            box = ListBox()
            storage = .list(box)
        }
        return UnkeyedContainer(encoder: self, box: box, prefix: [])
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(encoder: self)
    }
}

/// A coding key for list positions, `super`, and the keys of `Value` dicts.
struct ValueCodingKey: CodingKey {
    private let text: String?
    let intValue: Int?

    /// The key's text; for a list position its decimal digits, made only when asked.
    var stringValue: String { text ?? String(intValue ?? 0) }

    init(stringValue: String) {
        self.text = stringValue
        self.intValue = nil
    }

    init(intValue: Int) {
        self.text = nil
        self.intValue = intValue
    }

    static let `super` = ValueCodingKey(stringValue: "super")
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: _ValueEncoder
    let box: DictBox
    /// Keys between the encoder's path and this container (for nested containers).
    let prefix: [any CodingKey]

    var codingPath: [any CodingKey] { encoder.codingPath + prefix }

    private func set(_ value: Value, _ key: Key) {
        box.set(.string(key.stringValue), .value(value))
    }

    mutating func encodeNil(forKey key: Key) throws { set(.none, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(.float(value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(.float(Double(value)), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.int(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(Value(value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.int(Int64(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(Value(value), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.set(.string(key.stringValue), try encoder.pending(value, prefix: prefix, key: key))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = DictBox()
        box.set(.string(key.stringValue), .dict(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(encoder: encoder, box: nested, prefix: prefix + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = ListBox()
        box.set(.string(key.stringValue), .list(nested))
        return UnkeyedContainer(encoder: encoder, box: nested, prefix: prefix + [key])
    }

    mutating func superEncoder() -> any Encoder {
        superEncoder(key: ValueCodingKey.super)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder(key: key)
    }

    private func superEncoder(key: any CodingKey) -> any Encoder {
        let sub = _ValueEncoder(parent: encoder, prefix: prefix, key: key, userInfo: encoder.sendableUserInfo)
        box.set(.string(key.stringValue), .encoder(sub))
        return sub
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: _ValueEncoder
    let box: ListBox
    /// Keys between the encoder's path and this container (for nested containers).
    let prefix: [any CodingKey]

    var codingPath: [any CodingKey] { encoder.codingPath + prefix }

    var count: Int { box.items.count }

    private var nextKey: ValueCodingKey { ValueCodingKey(intValue: box.items.count) }

    private func append(_ value: Value) {
        box.items.append(value)
    }

    mutating func encodeNil() throws { append(.none) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(.float(value)) }
    mutating func encode(_ value: Float) throws { append(.float(Double(value))) }
    mutating func encode(_ value: Int) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { append(.int(value)) }
    mutating func encode(_ value: UInt) throws { append(Value(value)) }
    mutating func encode(_ value: UInt8) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { append(Value(value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let key = nextKey
        box.append(try encoder.pending(value, prefix: prefix, key: key))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let key = nextKey
        let nested = DictBox()
        box.append(.dict(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(encoder: encoder, box: nested, prefix: prefix + [key]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let key = nextKey
        let nested = ListBox()
        box.append(.list(nested))
        return UnkeyedContainer(encoder: encoder, box: nested, prefix: prefix + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let sub = _ValueEncoder(parent: encoder, prefix: prefix, key: nextKey, userInfo: encoder.sendableUserInfo)
        box.append(.encoder(sub))
        return sub
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let encoder: _ValueEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ value: Value) {
        encoder.storage = .value(value)
    }

    mutating func encodeNil() throws { set(.none) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(.float(value)) }
    mutating func encode(_ value: Float) throws { set(.float(Double(value))) }
    mutating func encode(_ value: Int) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { set(.int(value)) }
    mutating func encode(_ value: UInt) throws { set(Value(value)) }
    mutating func encode(_ value: UInt8) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { set(Value(value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.storage = try encoder.pending(value, prefix: [], key: nil)
    }
}
