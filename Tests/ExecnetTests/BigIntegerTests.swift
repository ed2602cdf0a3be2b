// Tests of BigInteger: Python int() parsing rules and limits, decimal rendering, conversions
// from and to fixed-width integers, ordering, and the normalization of integer Values.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct BigIntegerTests {
    @Test("decimal text parses with Python's int() rules", arguments: [
        ("0", "0"), ("-0", "0"), ("+5", "5"), (" 12 ", "12"), ("\t\n-7\r\u{0B}\u{0C}", "-7"),
        ("1_000", "1000"), ("007", "7"), ("0_0", "0"),
        ("-2147483649", "-2147483649"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("-1_000000000_000000000", "-1000000000000000000"),
        ("000000000000000000000000000000000001", "1"),
    ])
    func parses(text: String, expected: String) throws {
        #expect(try BigInteger(parsing: text).description == expected)
    }

    @Test("malformed decimal text is an invalidInteger error", arguments: [
        "", " ", "-", "+", "1__0", "_1", "1_", "1.5", "abc", "- 1", "0x10", "1e5", "--1", "\u{FF11}", "12\0",
    ])
    func rejects(text: String) {
        #expect(throws: SerializerError(.invalidInteger, "")) { try BigInteger(parsing: text) }
    }

    @Test("more than 4,300 digits is a tooLarge error, 4,300 is fine")
    func digitLimit() throws {
        let limit = String(repeating: "7", count: 4_300)
        #expect(try BigInteger(parsing: limit).description == limit)
        #expect(try BigInteger(parsing: "-" + limit).decimalDigitCount == 4_300)
        #expect(throws: SerializerError(.tooLarge, "")) { try BigInteger(parsing: limit + "7") }
        #expect(throws: SerializerError(.tooLarge, "")) { try BigInteger(parsing: "0" + limit) }
    }

    @Test("binary integers convert exactly, including beyond 64 bits")
    func fromBinary() {
        #expect(BigInteger(Int64.min).description == "-9223372036854775808")
        #expect(BigInteger(UInt64.max).description == "18446744073709551615")
        #expect(BigInteger(0).description == "0")
        #expect(BigInteger(Int128.max).description == "170141183460469231731687303715884105727")
        #expect(BigInteger(Int128.min).description == "-170141183460469231731687303715884105728")
        #expect(BigInteger(UInt128.max).description == "340282366920938463463374607431768211455")
    }

    @Test("conversion back to Int64 and UInt64 succeeds exactly when the number fits")
    func toFixedWidth() throws {
        #expect(BigInteger(Int64.min).int64Value == .min)
        #expect(BigInteger(Int64.max).int64Value == .max)
        #expect(BigInteger(UInt64(Int64.max) + 1).int64Value == nil)
        #expect(BigInteger(UInt64(Int64.max) + 1).uint64Value == UInt64(Int64.max) + 1)
        #expect(BigInteger(UInt64.max).uint64Value == .max)
        #expect(try BigInteger(parsing: "18446744073709551616").uint64Value == nil)
        #expect(try BigInteger(parsing: "-9223372036854775809").int64Value == nil)
        #expect(BigInteger(-1).uint64Value == nil)
        #expect(try BigInteger(parsing: "1" + String(repeating: "0", count: 40)).uint64Value == nil)
    }

    @Test("random 64-bit and 128-bit integers render like Swift's own description")
    func randomRendering() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2_000 {
            let a = Int64(bitPattern: rng.next())
            #expect(BigInteger(a).description == String(a))
            #expect(try BigInteger(parsing: String(a)).int64Value == a)
            let wide = Int128(Int64(bitPattern: rng.next())) << 64 | Int128(rng.next())
            #expect(BigInteger(wide).description == String(wide))
            #expect(try BigInteger(parsing: String(wide)) == BigInteger(wide))
        }
    }

    @Test("ordering is numeric")
    func ordering() throws {
        let values: [BigInteger] = try ["-100000000000000000000", "-5", "0", "3", "1000000000", "100000000000000000000"].map { try BigInteger(parsing: $0) }
        #expect(values.sorted() == values)
        #expect(values.shuffled().sorted() == values)
        #expect(values[1].negated() > values[3])
        #expect(BigInteger(0).negated().isNegative == false)
    }

    @Test("integer values are normalized to .int whenever they fit Int64")
    func normalization() throws {
        #expect(try Value.integer(fromDecimal: "9223372036854775807") == .int(.max))
        #expect(try Value.integer(fromDecimal: "-9223372036854775808") == .int(.min))
        if case .bigInt = try Value.integer(fromDecimal: "9223372036854775808") {} else {
            Issue.record("2^63 should be a bigInt")
        }
        if case .int(1) = try Value.integer(fromDecimal: "0000000000000000000000000000001") {} else {
            Issue.record("leading zeros should normalize to .int")
        }
        if case .int(-3) = Value(Int8(-3)) {} else { Issue.record("Int8 should be .int") }
        if case .bigInt = Value(UInt64.max) {} else { Issue.record("UInt64.max should be .bigInt") }
        // A hand-made small bigInt still equals (and hashes like) the .int.
        #expect(Value.bigInt(BigInteger(5)) == .int(5))
        #expect(Value.bigInt(BigInteger(5)).hashValue == Value.int(5).hashValue)
        #expect(Value.integer(BigInteger(5)) == .int(5))
    }
}
