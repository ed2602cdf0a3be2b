// Tests of the Value model itself: strict structural equality and hashing, Python's notion of
// text equality, the Python-like description, literals and accessors, and how decoded dicts
// treat repeated keys.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct ValueTests {
    @Test("bool, int and float are different values, as are list and tuple, set and frozenset")
    func strictKinds() {
        #expect(Value.bool(true) != .int(1))
        #expect(Value.int(1) != .float(1.0))
        #expect(Value.list([1]) != .tuple([1]))
        #expect(Value.set([1]) != .frozenSet([1]))
        #expect(Value.float(.nan) == .float(.nan))
        #expect(Value.float(0.0) != .float(-0.0))
        #expect(Value.complex(Complex(real: 0, imaginary: .nan)) == .complex(Complex(real: 0, imaginary: .nan)))
        let channel = Channel(id: 1)
        #expect(Value.channel(channel) == .channel(channel))
        #expect(Value.channel(channel) != .channel(Channel(id: 1)))
        #expect(Set<Value>([true, 1, 1.0, "1", .bytes([0x31])]).count == 5)
    }

    @Test("text compares by code points like Python, so canonically equivalent strings stay distinct")
    func codePointEquality() throws {
        let composed = Value.string("\u{E9}")
        let decomposed = Value.string("e\u{301}")
        #expect(composed != decomposed)
        let dict: Value = [composed: 1, decomposed: 2]
        #expect(dict.dictValue?.count == 2)
        #expect(try loads(try dumps(dict)) == dict)
        #expect(Set([composed, decomposed]).count == 2)
    }

    @Test("dictionary order matters for equality")
    func dictOrder() {
        let ab: Value = ["a": 1, "b": 2]
        let ba: Value = ["b": 2, "a": 1]
        #expect(ab != ba)
    }

    @Test("a decoded dict with a repeated key keeps the first position and the last value", arguments: [3, 100])
    func repeatedKeys(count: Int) throws {
        // {0: 0, 1: 1, …, count-1: count-1, 0: "last"}
        var bytes: [UInt8] = [0x02, 0x4A]
        for i in 0..<count {
            bytes += [0x46, 0, 0, 0, UInt8(i), 0x46, 0, 0, 0, UInt8(i), 0x50]
        }
        bytes += [0x46, 0, 0, 0, 0, 0x4E, 0, 0, 0, 4] + Array("last".utf8) + [0x50, 0x51]
        let decoded = try loads(bytes)
        #expect(decoded.dictValue?.count == count)
        #expect(decoded.dictValue?.keys.first == 0)
        #expect(decoded[.int(0)] == "last")
        #expect(decoded[.int(Int64(count - 1))] == .int(Int64(count - 1)))
    }

    @Test("descriptions follow Python's repr", arguments: [
        (Value.none, "None"), (true, "True"), (-5, "-5"), (.float(2.0), "2.0"), (.float(1e16), "1e+16"),
        (.float(1e15), "1000000000000000.0"), (.float(0.0001), "0.0001"), (.float(0.00001), "1e-05"),
        (.float(-.infinity), "-inf"), (.float(.nan), "nan"),
        (.complex(Complex(real: 0, imaginary: 2)), "2j"), (.complex(Complex(real: 1, imaginary: -.infinity)), "(1-infj)"),
        (.complex(Complex(real: 2.5, imaginary: -0.0)), "(2.5-0j)"),
        ("it's", "\"it's\""), ("\"'", "'\"\\''"), ("a\u{7F}\u{80}\u{A0}\u{AD}\u{2028}\u{200B} \u{3000} \u{1F600} \u{E0001}", "'a\\x7f\\x80\\xa0\\xad\\u2028\\u200b \\u3000 \u{1F600} \\U000e0001'"),
        (.bytes(Array("'".utf8)), "b\"'\""), (.bytes([0, 9, 10, 13, 0x5C, 0x7F]), "b'\\x00\\t\\n\\r\\\\\\x7f'"),
        (.tuple([1]), "(1,)"), (.tuple([]), "()"), (.set([]), "set()"), (.frozenSet([]), "frozenset()"),
        (.frozenSet([1]), "frozenset({1})"), (Value.dict(["k": [1, nil]]), "{'k': [1, None]}"),
        (Value(UInt64.max), "18446744073709551615"), (.channel(Channel(id: 3)), "<Channel id=3>"),
    ])
    func descriptions(value: Value, expected: String) {
        #expect(value.description == expected)
    }

    @Test("accessors return the payload of their own kind only")
    func accessors() {
        let value: Value = ["n": 3, "s": "x", "b": true, "f": 1.5, "l": [1, 2], "y": .bytes([1])]
        #expect(value["n"]?.intValue == 3)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["b"]?.boolValue == true)
        #expect(value["b"]?.intValue == nil)
        #expect(value["f"]?.doubleValue == 1.5)
        #expect(value["n"]?.doubleValue == 3.0)
        #expect(value["l"]?[1] == 2)
        #expect(value["l"]?[2] == nil)
        #expect(value["y"]?.bytesValue == [1])
        #expect(value["missing"] == nil)
        #expect(value[.string("n")] == 3)
        #expect(Value.none.isNone)
        #expect(Value.tuple([1]).listValue == [1])
        #expect(value.dictValue?.count == 6)
        #expect(Value(Int8(-3)) == -3)
    }
}
