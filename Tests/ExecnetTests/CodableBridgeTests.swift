// Tests of the Codable bridge: user types roundtrip through ValueEncoder/ValueDecoder (and
// through dumps/loads), the mapping to Value is the documented one, and mismatches surface as
// Swift's DecodingError.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

private struct Point: Codable, Equatable {
    var x: Int
    var y: Double
}

private struct Shape: Codable, Equatable {
    var name: String
    var corners: [Point]
    var tags: [String: Int]
    var note: String?
    var blob: [UInt8]
    var nested: [[UInt8]]
    var extra: Value
}

private enum Command: Codable, Equatable {
    case stop
    case move(dx: Int, dy: Int)
    case say(String)
    case many([Point], label: String?)
}

private struct Limits: Codable, Equatable {
    var u64: UInt64
    var i64: Int64
    var i8: Int8
    var u8: UInt8
    var f: Float
    var flag: Bool
}

private class Base: Codable {
    var id: Int
    init(id: Int) { self.id = id }
}

private final class Derived: Base {
    var label: String
    init(id: Int, label: String) {
        self.label = label
        super.init(id: id)
    }

    enum CodingKeys: String, CodingKey { case label }

    required init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        label = try c.decode(String.self, forKey: .label)
        try super.init(from: c.superDecoder())
    }

    override func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(label, forKey: .label)
        try super.encode(to: c.superEncoder())
    }
}

@Suite struct CodableBridgeTests {
    func roundtrip<T: Codable & Equatable>(_ value: T) throws -> Value {
        let encoded = try ValueEncoder().encode(value)
        #expect(try ValueDecoder().decode(T.self, from: encoded) == value)
        let wire = try loads(try dumps(encoded))
        #expect(try ValueDecoder().decode(T.self, from: wire) == value)
        return encoded
    }

    @Test("a struct becomes a dict with text keys in declaration order")
    func structMapping() throws {
        let encoded = try roundtrip(Point(x: 3, y: 1.5))
        #expect(encoded == ["x": 3, "y": 1.5])
        #expect(encoded.description == "{'x': 3, 'y': 1.5}")
    }

    @Test("nested structs, arrays, dictionaries, bytes and Value fields roundtrip")
    func nestedStruct() throws {
        let shape = Shape(
            name: "tri", corners: [Point(x: 0, y: 0), Point(x: 1, y: -2.5)], tags: ["a": 1],
            note: nil, blob: [0, 255], nested: [[1], []],
            extra: .tuple([.set([1]), .complex(Complex(real: 1, imaginary: 2)), .bigInt(try BigInteger(parsing: "1" + String(repeating: "0", count: 30)))]))
        let encoded = try roundtrip(shape)
        #expect(encoded["note"] == nil, "nil optionals are absent keys")
        #expect(encoded["blob"] == .bytes([0, 255]))
        #expect(encoded["nested"] == [.bytes([1]), .bytes([])])
        #expect(encoded["extra"] == shape.extra)
        #expect(encoded["corners"]?[1] == ["x": 1, "y": -2.5])
        var withNote = shape
        withNote.note = "hi"
        #expect(try roundtrip(withNote)["note"] == "hi")
    }

    @Test("enums with associated values roundtrip", arguments: [
        Command.stop, .move(dx: 1, dy: -1), .say("hello"), .many([Point(x: 1, y: 2)], label: nil), .many([], label: "x"),
    ])
    fileprivate func enums(_ command: Command) throws {
        _ = try roundtrip(command)
    }

    @Test("an enum case maps to a dict keyed by the case name")
    func enumMapping() throws {
        #expect(try ValueEncoder().encode(Command.move(dx: 1, dy: 2)) == ["move": ["dx": 1, "dy": 2]])
        #expect(try ValueEncoder().encode(Command.say("x")) == ["say": ["_0": "x"]])
    }

    @Test("integer extremes roundtrip, with UInt64 beyond Int64 as a big integer")
    func integerExtremes() throws {
        let limits = Limits(u64: .max, i64: .min, i8: -128, u8: 255, f: 0.5, flag: true)
        let encoded = try roundtrip(limits)
        #expect(encoded["u64"] == .bigInt(BigInteger(UInt64.max)))
        #expect(encoded["i64"] == .int(.min))
        #expect(try ValueEncoder().encode(UInt64(5)) == .int(5))
    }

    @Test("integers out of the target type's range fail with dataCorrupted")
    func integerRange() throws {
        let tooBig: Value = ["u64": 1, "i64": 1, "i8": 128, "u8": 1, "f": 1.0, "flag": true]
        #expect {
            _ = try ValueDecoder().decode(Limits.self, from: tooBig)
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.codingPath.map(\.stringValue) == ["i8"]
        }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(UInt8.self, from: -1) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int64.self, from: Value(UInt64.max)) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Float.self, from: .float(1e300)) }
        #expect(try ValueDecoder().decode(UInt64.self, from: Value(UInt64.max)) == .max)
    }

    @Test("kinds are not converted loosely")
    func strictKinds() throws {
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: true) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Bool.self, from: 1) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(String.self, from: .bytes([0x61])) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: 1.0) }
        #expect(try ValueDecoder().decode(Double.self, from: 2) == 2.0)
    }

    @Test("missing keys and None values")
    func missingKeys() throws {
        #expect {
            _ = try ValueDecoder().decode(Point.self, from: ["x": 1])
        } throws: { error in
            if case DecodingError.keyNotFound(let key, _) = error { return key.stringValue == "y" }
            return false
        }
        #expect {
            _ = try ValueDecoder().decode(Point.self, from: ["x": 1, "y": nil])
        } throws: { error in
            if case DecodingError.valueNotFound = error { return true }
            return false
        }
        struct Maybe: Codable, Equatable { var a: Int? }
        #expect(try ValueDecoder().decode(Maybe.self, from: ["a": nil]) == Maybe(a: nil))
        #expect(try ValueDecoder().decode(Maybe.self, from: [:]) == Maybe(a: nil))
        #expect(try ValueEncoder().encode(Maybe(a: nil)) == [:])
        #expect(try ValueEncoder().encode([1, nil, 3] as [Int?]) == [1, nil, 3])
    }

    @Test("top-level values: arrays, bytes, dictionaries, optionals and Value itself")
    func topLevel() throws {
        #expect(try roundtrip([1, 2, 3]) == [1, 2, 3])
        #expect(try roundtrip([UInt8]([1, 2])) == .bytes([1, 2]))
        #expect(try roundtrip(["b": 2, "a": 1]).dictValue?.count == 2)
        #expect(try roundtrip("text") == "text")
        #expect(try roundtrip(Int?.none) == nil)
        let value: Value = .tuple([.frozenSet([1]), .bytes([9]), nil])
        #expect(try ValueEncoder().encode(value) == value)
        #expect(try ValueDecoder().decode(Value.self, from: value) == value)
        #expect(try roundtrip([[UInt8]]([[1], [2, 3]])) == [.bytes([1]), .bytes([2, 3])])
    }

    @Test("dictionaries with integer keys use text keys and read Python's integer keys")
    func integerKeys() throws {
        #expect(try roundtrip([1: "a", 2: "b"]).dictValue?.keys.contains("1") == true)
        #expect(try ValueDecoder().decode([Int: String].self, from: [1: "a"]) == [1: "a"])
    }

    @Test("tuples and sets decode as arrays, and bytes also as a list of small integers")
    func sequences() throws {
        #expect(try ValueDecoder().decode([Int].self, from: .tuple([1, 2])) == [1, 2])
        #expect(try ValueDecoder().decode(Set<Int>.self, from: .frozenSet([1, 2])) == [1, 2])
        #expect(try ValueDecoder().decode([UInt8].self, from: [1, 2]) == [1, 2])
    }

    @Test("super encoders and decoders store the superclass under 'super'")
    func superEncoder() throws {
        let encoded = try ValueEncoder().encode(Derived(id: 4, label: "d"))
        #expect(encoded == ["label": "d", "super": ["id": 4]])
        let decoded = try ValueDecoder().decode(Derived.self, from: encoded)
        #expect(decoded.id == 4 && decoded.label == "d")
    }

    @Test("type mismatches report the coding path")
    func mismatchPath() {
        #expect {
            _ = try ValueDecoder().decode([Point].self, from: [["x": 1, "y": 2.0], ["x": "no", "y": 1.0]])
        } throws: { error in
            guard case DecodingError.typeMismatch(_, let context) = error else { return false }
            return context.codingPath.map(\.stringValue) == ["1", "x"]
        }
    }
}
