// `Value` as a Codable type, so structs can hold `Value` fields. With `ValueEncoder` and
// `ValueDecoder` a `Value` passes through unchanged; with other coders (JSON, property lists)
// it maps onto their containers as well as they allow.

extension Value: Codable {
    /// Encodes the value into another Codable format.
    ///
    /// ``ValueEncoder`` never calls this: it stores the value unchanged. Other encoders get
    /// ``none`` as nil, scalars as scalars, lists, tuples and sets as arrays, byte strings as arrays
    /// of bytes, complex numbers as `[real, imaginary]`, big integers as decimal text, dicts with
    /// only text keys as keyed containers and other dicts as flat `[k0, v0, k1, v1, …]` arrays.
    ///
    /// - Parameter encoder: The encoder to write to.
    /// - Throws: `EncodingError.invalidValue` for a channel, or what the encoder throws.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .none:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .bigInt(let b):
            var c = encoder.singleValueContainer()
            if let u = b.uint64Value { try c.encode(u) } else { try c.encode(b.description) }
        case .float(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .complex(let z):
            var c = encoder.unkeyedContainer()
            try c.encode(z.real)
            try c.encode(z.imaginary)
        case .bytes(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .list(let items), .tuple(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .set(let members), .frozenSet(let members):
            var c = encoder.unkeyedContainer()
            for member in members { try c.encode(member) }
        case .dict(let entries):
            if entries.keys.allSatisfy({ $0.stringValue != nil }) {
                var c = encoder.container(keyedBy: ValueCodingKey.self)
                for (key, value) in entries {
                    try c.encode(value, forKey: ValueCodingKey(stringValue: key.stringValue ?? ""))
                }
            } else {
                var c = encoder.unkeyedContainer()
                for (key, value) in entries {
                    try c.encode(key)
                    try c.encode(value)
                }
            }
        case .channel, .channelReference:
            throw EncodingError.invalidValue(self, .init(
                codingPath: encoder.codingPath,
                debugDescription: "A channel can only be sent through execnet's own serializer."))
        }
    }

    /// Decodes a value from another Codable format.
    ///
    /// ``ValueDecoder`` never calls this: it hands the value over unchanged. Other decoders are
    /// probed in order: nil, `Bool`, `Int64`, `UInt64`, `Double`, `String`, a keyed container
    /// (a dict with text keys), an unkeyed container (a list).
    ///
    /// - Parameter decoder: The decoder to read from.
    /// - Throws: `DecodingError.dataCorrupted` when none of the shapes fits.
    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer() {
            if single.decodeNil() { self = .none; return }
            if let b = try? single.decode(Bool.self) { self = .bool(b); return }
            if let i = try? single.decode(Int64.self) { self = .int(i); return }
            if let u = try? single.decode(UInt64.self) { self = Value(u); return }
            if let d = try? single.decode(Double.self) { self = .float(d); return }
            if let s = try? single.decode(String.self) { self = .string(s); return }
        }
        if let keyed = try? decoder.container(keyedBy: ValueCodingKey.self) {
            var entries = ValueDictionary()
            for key in keyed.allKeys {
                entries[.string(key.stringValue)] = try keyed.decode(Value.self, forKey: key)
            }
            self = .dict(entries)
            return
        }
        if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [Value] = []
            while !unkeyed.isAtEnd {
                items.append(try unkeyed.decode(Value.self))
            }
            self = .list(items)
            return
        }
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "No value shape fits."))
    }
}
