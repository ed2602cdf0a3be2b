// Which dict keys and set members merge follows Python (issue 11 item 6): decoding merges what
// Python merges (1, True, 1.0; 0.0, -0.0, complex(0, -0.0); (1,), (True,)), keeping the first
// member as Python does, and keeps every NaN apart; encoding refuses a Swift-built dict or set
// holding two members Python would merge. Vectors are execnet 2.1.2's own bytes.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct SerializerPythonEqualityTests {
    static func hex(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex {
            let j = text.index(i, offsetBy: 2)
            out.append(UInt8(text[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// Members in wire order (a decoded set keeps Python's order).
    static func members(_ value: Value) -> [Value] {
        switch value {
        case .set(let s), .frozenSet(let s): s.members
        default: []
        }
    }

    @Test("a dict with two NaN keys keeps both entries through a Swift round trip")
    func nanDictKeys() throws {
        // execnet.dumps({float('nan'): 1, float('nan'): 2})
        let bytes = Self.hex("024a447ff8000000000000460000000150447ff800000000000046000000025051")
        let value = try loads(bytes)
        let dict = try #require(value.dictValue)
        #expect(dict.count == 2)
        #expect(dict.values == [1, 2])
        #expect(try dumps(value) == bytes)
    }

    @Test("sets and frozensets with two NaN members keep both through a Swift round trip", arguments: [
        "02447ff8000000000000447ff80000000000004f0000000251",  // {nan, nan}
        "02447ff8000000000000447ff8000000000000450000000251",  // frozenset({nan, nan})
    ])
    func nanSetMembers(vector: String) throws {
        let bytes = Self.hex(vector)
        let value = try loads(bytes)
        #expect(Self.members(value).count == 2)
        #expect(try dumps(value) == bytes)
        // Through the channel form as well.
        var payload: [UInt8] = []
        try Serializer.encodeInternal(value, into: &payload)
        #expect(Self.members(try Serializer.decodeInternal(payload, resolveChannel: nil)).count == 2)
    }

    @Test("members Python merges decode merged, the first kept with its kind")
    func mergedMembers() throws {
        // Raw execnet programs (Python's loads of them is in the comment).
        // {1, True, 1.0} -> {1}
        let ints = try loads(Self.hex("02460000000152443ff00000000000004f0000000351"))
        #expect(Self.members(ints) == [.int(1)])
        #expect(try dumps(ints) == Self.hex("0246000000014f0000000151"))
        // {0.0: 'a', -0.0: 'b', complex(0, -0.0): 'c', False: 'd'} -> {0.0: 'd'}
        let zeros = try loads(Self.hex(
            "024a4400000000000000004e0000000161504480000000000000004e00000001625054000000000000000080000000000000004e000000016350434e00000001645051"))
        #expect(zeros == .dict([.float(0.0): "d"]))
        // frozenset of (1,), (True,), (1.0,), frozenset({1}), frozenset({True})
        //   -> frozenset({(1,), frozenset({1})})
        let nested = try loads(Self.hex(
            "0246000000014000000001524000000001443ff0000000000000400000000146000000014500000001524500000001450000000551"))
        #expect(Self.members(nested) == [.tuple([1]), .frozenSet([1])])
        // {2**70, float(2**70), 2**70 + 1} -> the two ints
        let big = try loads(Self.hex(
            "02480000001631313830353931363230373137343131333033343234444450000000000000480000001631313830353931363230373137343131333033343235450000000351"))
        #expect(Self.members(big).map(\.description) == ["1180591620717411303424", "1180591620717411303425"])
    }

    @Test("a Swift-built set or dict holding members Python merges is refused at encoding", arguments: [
        Value.set([1, true]),
        .frozenSet([1, .float(1)]),
        .set([.float(0.0), .float(-0.0)]),
        .set([.complex(Complex(real: 0, imaginary: -0.0)), .float(-0.0)]),
        .set([.complex(Complex(real: 2, imaginary: 0)), 2]),
        .frozenSet([.tuple([1]), .tuple([true])]),
        .set([.frozenSet([1]), .frozenSet([true])]),
        .dict([1: "a", true: "b"]),
        .list([.dict([.float(1e30): 1, .bigInt(BigInteger(exactlyIntegral: 1e30)): 2])]),
    ])
    func refusesMerging(value: Value) throws {
        #expect(throws: SerializerError(.pythonDuplicate, "")) { try dumps(value) }
        var payload: [UInt8] = []
        #expect(throws: SerializerError(.pythonDuplicate, "")) { try Serializer.encodeInternal(value, into: &payload) }
    }

    @Test("members Python keeps apart encode", arguments: [
        Value.set([1, 2, .float(1.5), "1", .bytes([0x31]), nil]),
        .set([.float(.nan), .float(1)]),
        .dict([.float(.nan): 1, 0: 2]),
        .frozenSet([.tuple([1, 2]), .tuple([2, 1]), .frozenSet([1, 2]), .complex(Complex(real: 0, imaginary: 1))]),
        .set([.complex(Complex(real: 1, imaginary: 1)), .complex(Complex(real: 1, imaginary: -1))]),
    ])
    func keepsDistinct(value: Value) throws {
        #expect(try loads(dumps(value)) == value)
    }

    /// Merge-prone members, each with its Python equivalence class (`nil`: a NaN, its own).
    static let pool: [(Value, Int?)] = [
        (1, 0), (true, 0), (.float(1), 0), (.complex(Complex(real: 1, imaginary: 0)), 0),
        (0, 1), (false, 1), (.float(0), 1), (.float(-0.0), 1), (.complex(Complex(real: 0, imaginary: -0.0)), 1),
        (.tuple([1]), 2), (.tuple([true]), 2), (.tuple([.float(1)]), 2),
        (.frozenSet([1]), 3), (.frozenSet([true]), 3),
        (.float(.nan), nil), (.complex(Complex(real: .nan, imaginary: 0)), nil), (.tuple([.float(.nan)]), nil),
        (.bigInt(BigInteger(exactlyIntegral: 0x1p70)), 4), (.float(0x1p70), 4),
        ("1", 5), (.bytes([0x31]), 6), (.float(1.5), 7), (.complex(Complex(real: 1.5, imaginary: -0.0)), 7),
        (.complex(Complex(real: 0, imaginary: 1)), 8), (.complex(Complex(real: -0.0, imaginary: 1)), 8),
        (.float(.infinity), 9), (.complex(Complex(real: .infinity, imaginary: 0)), 9), (nil, 10),
    ]

    @Test("random merge-prone members decode as Python's set and dict would hold them")
    func randomMerges() throws {
        var rng = SplitMix(state: 0xC0FFEE)
        for round in 0..<2_000 {
            let picks = (0..<Int(rng.next() % 12)).map { _ in Int(rng.next() % UInt64(Self.pool.count)) }
            // The reference: the first of each class, in order; NaN members all kept.
            var seen = Set<Int>()
            let kept = picks.filter { i in Self.pool[i].1.map { seen.insert($0).inserted } ?? true }
            let expected = kept.map { Self.pool[$0].0 }

            var setProgram: [UInt8] = [Serializer.formatVersion]
            var dictProgram: [UInt8] = [Serializer.formatVersion, Serializer.Opcode.newDict]
            for (n, i) in picks.enumerated() {
                let member = Array(try dumps(Self.pool[i].0).dropFirst().dropLast())
                setProgram += member
                dictProgram += member + Array(try dumps(.int(Int64(n))).dropFirst().dropLast()) + [Serializer.Opcode.setItem]
            }
            let count = UInt8(picks.count)
            setProgram += [round % 2 == 0 ? Serializer.Opcode.set : Serializer.Opcode.frozenSet, 0, 0, 0, count, Serializer.Opcode.stop]
            dictProgram += [Serializer.Opcode.stop]

            let set = try loads(setProgram)
            #expect(Self.members(set) == expected, "picks \(picks)")
            let dict = try #require(try loads(dictProgram).dictValue)
            #expect(dict.keys == expected, "picks \(picks)")
            // Each kept key holds the value of its class's last occurrence, as `d[k] = v` leaves it.
            let expectedValues: [Value] = picks.indices.compactMap { p in
                guard let cls = Self.pool[picks[p]].1 else { return .int(Int64(p)) }
                guard picks.firstIndex(where: { Self.pool[$0].1 == cls }) == p else { return nil }
                return .int(Int64(picks.lastIndex { Self.pool[$0].1 == cls }!))
            }
            #expect(dict.values == expectedValues, "picks \(picks)")
            // What was decoded encodes again and decodes to itself.
            #expect(try loads(dumps(set)) == set)
            #expect(try loads(dumps(.dict(dict))) == .dict(dict))
            // A Swift-built set of the structurally distinct picks is refused exactly when Python merges some.
            let structural = Array(ValueSet(picks.map { Self.pool[$0].0 }))
            let classes = structural.compactMap { m in Self.pool.first { $0.0 == m }?.1 }
            let merges = Set(classes).count < classes.count
            if merges {
                #expect(throws: SerializerError(.pythonDuplicate, "")) { try dumps(.set(ValueSet(structural))) }
            } else {
                #expect(throws: Never.self) { try dumps(.set(ValueSet(structural))) }
            }
        }
    }
}

/// A small seeded generator for the tests in this file.
private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
