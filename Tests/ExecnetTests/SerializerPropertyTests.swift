// Property tests of the codec: seeded random values roundtrip through both framings, random
// and mutated byte strings never produce anything but a SerializerError, deep nesting works up
// to the documented limit and fails cleanly beyond it, and huge declared lengths fail fast.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct SerializerPropertyTests {
    @Test("random values roundtrip through dumps and loads")
    func versionedRoundtrip() throws {
        var generator = RandomValues(seed: 0x5EED_0001)
        for index in 0..<3_000 {
            let value = generator.value(depth: 4)
            let decoded = try loads(try dumps(value))
            #expect(decoded == value, "value #\(index): \(value)")
        }
    }

    @Test("random values with channels roundtrip through the channel payload form")
    func internalRoundtrip() throws {
        let channels = ChannelRegistry()
        var generator = RandomValues(seed: 0x5EED_0002)
        generator.channels = [1, 2, 3, 5, 8].map { channels.channel($0) }
        for index in 0..<3_000 {
            let value = generator.value(depth: 4)
            var bytes: [UInt8] = []
            try Serializer.encodeInternal(value, into: &bytes)
            let decoded = try Serializer.decodeInternal(bytes, resolveChannel: channels.channel)
            #expect(decoded == value, "value #\(index): \(value)")
        }
    }

    /// Decodes `bytes` both ways; only SerializerError may come out. A successful decode must
    /// re-encode and decode to the same value.
    static func probe(_ bytes: [UInt8]) -> Bool {
        var accepted = false
        do {
            let value = try loads(bytes)
            accepted = true
            #expect(try loads(try dumps(value)) == value, "input \(Hex.encode(bytes))")
        } catch {
            // typed throws: a SerializerError
        }
        do {
            _ = try Serializer.decodeInternal(bytes, resolveChannel: { Channel(id: $0) })
        } catch {
            #expect(error is SerializerError, "input \(Hex.encode(bytes)) threw \(error)")
        }
        return accepted
    }

    @Test("random byte strings only ever fail with SerializerError")
    func randomBytes() {
        var rng = SplitMix64(seed: 0xF022_0001)
        // Mostly opcodes and small/extreme payload bytes, so programs get somewhere.
        let alphabet: [UInt8] = Array(0x40...0x54) + [0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF, 0x20, 0x2D, 0x31]
        var accepted = 0
        for _ in 0..<50_000 {
            var bytes: [UInt8] = Int.random(in: 0...9, using: &rng) == 0 ? [] : [0x02]
            for _ in 0..<Int.random(in: 0...24, using: &rng) {
                bytes.append(Int.random(in: 0...3, using: &rng) == 0
                    ? UInt8.random(in: 0...255, using: &rng) : alphabet.randomElement(using: &rng)!)
            }
            if Self.probe(bytes) { accepted += 1 }
        }
        #expect(accepted > 0)
    }

    @Test("mutated encodings only ever fail with SerializerError")
    func mutatedEncodings() throws {
        var generator = RandomValues(seed: 0xF022_0002)
        var cases = 0
        let extremes: [[UInt8]] = [[0x7F, 0xFF, 0xFF, 0xFF], [0x80, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0], [0, 0, 1, 0]]
        while cases < 60_000 {
            let original = try dumps(generator.value(depth: 3))
            for _ in 0..<20 {
                var bytes = original
                let position = generator.int(0...(bytes.count - 1))
                switch generator.int(0...5) {
                case 0: bytes[position] ^= UInt8(1 << generator.int(0...7))
                case 1: bytes[position] = UInt8(generator.int(0x3F...0x55))
                case 2: bytes.remove(at: position)
                case 3: bytes.insert(UInt8(generator.int(0x40...0x54)), at: position)
                case 4: bytes.removeSubrange(position...)
                default:
                    let field = extremes[generator.int(0...(extremes.count - 1))]
                    let end = min(bytes.count, position + 4)
                    bytes.replaceSubrange(position..<end, with: field)
                }
                _ = Self.probe(bytes)
                cases += 1
            }
        }
        #expect(cases >= 60_000)
    }

    /// Nested containers `depth` levels deep around the int 7.
    static func nested(_ depth: Int, kind: Int) -> Value {
        var value: Value = 7
        for level in 0..<depth {
            switch kind == 4 ? level % 3 : kind {
            case 0: value = .list([value])
            case 1: value = .tuple([value])
            case 2: value = .dict([.int(Int64(level)): value])
            default: value = .frozenSet([.tuple([value])])  // tuple inside: 2 levels
            }
        }
        return value
    }

    @Test("1,000 levels of nesting roundtrip", arguments: 0...4)
    func deepRoundtrip(kind: Int) throws {
        let value = Self.nested(kind == 3 ? 500 : 1_000, kind: kind)
        #expect(try loads(try dumps(value)) == value)
    }

    @Test("nesting at the depth limit roundtrips and one level more is refused")
    func depthLimit() throws {
        let limit = Serializer.maximumDepth
        let atLimit = Self.nested(limit, kind: 0)
        let bytes = try dumps(atLimit)
        #expect(try loads(bytes) == atLimit)
        #expect(throws: SerializerError(.tooDeep, "")) { try dumps(.list([atLimit])) }
    }

    /// Lists nested `depth` deep, written directly as bytes (no Value is built).
    static func nestedListBytes(_ depth: Int) -> [UInt8] {
        var bytes: [UInt8] = [0x02]
        for _ in 0..<depth { bytes += [0x4B, 0, 0, 0, 1, 0x46, 0, 0, 0, 0] }
        bytes += [0x46, 0, 0, 0, 7]
        bytes += [UInt8](repeating: 0x50, count: depth)
        bytes.append(0x51)
        return bytes
    }

    @Test("decoding beyond the depth limit fails with tooDeep")
    func decodeTooDeep() {
        let limit = Serializer.maximumDepth
        #expect(throws: Never.self) { try loads(Self.nestedListBytes(limit)) }
        #expect(throws: SerializerError(.tooDeep, "")) { try loads(Self.nestedListBytes(limit + 1)) }
        #expect(throws: SerializerError(.tooDeep, "")) { try loads(Self.nestedListBytes(200_000)) }
        // Postfix tuples: the stack stays small while the value grows deep.
        var tuples: [UInt8] = [0x02, 0x46, 0, 0, 0, 1]
        for _ in 0..<200_000 { tuples += [0x40, 0, 0, 0, 1] }
        tuples.append(0x51)
        #expect(throws: SerializerError(.tooDeep, "")) { try loads(tuples) }
    }

    @Test("huge declared lengths and counts fail fast without allocating", arguments: [
        ("41 7fffffff 00", SerializerError.Code.truncated),
        ("4e 7fffffff 61", .truncated),
        ("48 7fffffff 31", .truncated),
        ("4d 7fffffff", .truncated),
        ("4b 7fffffff 46000000004c50", .truncated),
        ("4b 12492492 51", .truncated),
        ("4c 40 7fffffff 51", .stackMismatch),
        ("4c 4f 7fffffff 51", .stackMismatch),
        ("4c 45 7fffffff 51", .stackMismatch),
        ("41 80000000", .negativeCount),
        ("4b ffffffff 51", .negativeCount),
        ("40 ffffffff 51", .negativeCount),
    ])
    func hugeLengths(hex: String, code: SerializerError.Code) {
        // The decoder checks a claimed length against the bytes left before it reserves anything
        // (Serializer+Decode.swift), so each fails with its code instead of allocating the claim.
        do throws(SerializerError) {
            _ = try loads(Hex.decode("02" + hex))
            Issue.record("\(hex) decoded")
        } catch {
            #expect(error.code == code, "\(hex): \(error)")
        }
    }

    @Test("dictionary keys and set members must be hashable in Python's sense when encoding")
    func unhashableOnEncode() {
        #expect(throws: SerializerError(.unhashable, "")) { try dumps(.dict([.list([1]): 1])) }
        #expect(throws: SerializerError(.unhashable, "")) { try dumps(.dict([.tuple([.set([])]): 1])) }
        #expect(throws: SerializerError(.unhashable, "")) { try dumps(.set([.dict([:])])) }
        #expect(throws: Never.self) { try dumps(.set([.tuple([1, .frozenSet([2])])])) }
    }

    @Test("integers with more than 4,300 digits are refused on both sides")
    func integerDigitLimit() throws {
        let big = try BigInteger(parsing: String(repeating: "9", count: 4_300))
        let encoded = try dumps(.bigInt(big))
        #expect(try loads(encoded) == .bigInt(big))
        var longer = Hex.decode("0248000010cd")
        longer += [UInt8](repeating: 0x39, count: 4_301)
        longer.append(0x51)
        #expect(throws: SerializerError(.tooLarge, "")) { try loads(longer) }
    }
}

/// The small-int fast paths of the channel form agree with the general encoder and decoder.
@Suite struct SmallIntFastPathTests {
    @Test(arguments: [0, 1, -1, 42, 255, 256, -129, Int64(Int32.min), Int64(Int32.max),
                      Int64(Int32.max) + 1, Int64(Int32.min) - 1, Int64.max, Int64.min])
    func smallIntsEncodeAndDecodeAsTheGeneralPathDoes(_ number: Int64) throws {
        var fast: [UInt8] = []
        try Serializer.encodeInternal(.int(number), into: &fast)
        // The general path: the versioned form without its version byte.
        let general = Array(try Serializer.encodeVersioned(.int(number)).dropFirst())
        #expect(fast == general)
        #expect(try Serializer.decodeInternal(fast, resolveChannel: nil) == .int(number))
        // A payload that only looks like a small int at the edges still goes the general way.
        var appended: [UInt8] = [0xAA]
        try Serializer.encodeInternal(.int(number), into: &appended)
        #expect(Array(appended.dropFirst()) == general)
    }

    @Test func aSixBytePayloadThatIsNotASmallIntDecodesAsBefore() throws {
        // "A" (bytes), length 0 ... is not an int: the fast path must not take it.
        let bytes = try Serializer.encodeVersioned(.bytes([]))
        let program = Array(bytes.dropFirst())
        #expect(try Serializer.decodeInternal(program, resolveChannel: nil) == .bytes([]))
        #expect(throws: (any Error).self) { try Serializer.decodeInternal([Serializer.Opcode.int, 0, 0, 0, 1, 0x00], resolveChannel: nil) }
    }
}
