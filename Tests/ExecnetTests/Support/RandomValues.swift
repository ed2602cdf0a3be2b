// A seeded pseudo-random generator (SplitMix64) and a generator of random `Value`s covering
// every kind the format carries, for the property tests. Dict keys and set members are drawn
// from the kinds Python can hash, so every generated value is encodable.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime

struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct RandomValues {
    var rng: SplitMix64
    /// Channels to draw from; empty means no channel values are generated.
    var channels: [Channel] = []

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &rng)
    }

    mutating func chance(_ percent: Int) -> Bool {
        int(0...99) < percent
    }

    mutating func integer() -> Value {
        switch int(0...5) {
        case 0: return .int(Int64(int(-3...3)))
        case 1: return .int(Int64(Int32.random(in: .min ... .max, using: &rng)))
        case 2: return .int(Int64.random(in: .min ... .max, using: &rng))
        case 3: return .int([Int64(Int32.max) + 1, Int64(Int32.min) - 1, .max, .min][int(0...3)])
        case 4: return Value(UInt64.random(in: UInt64(Int64.max) + 1 ... .max, using: &rng))
        default:
            var digits = String(int(1...9))
            for _ in 0..<int(19...60) { digits += String(int(0...9)) }
            return try! Value.integer(fromDecimal: (chance(50) ? "-" : "") + digits)
        }
    }

    mutating func double() -> Double {
        switch int(0...4) {
        case 0: return [0.0, -0.0, .infinity, -.infinity, .nan, 1.5, 0.1, .leastNonzeroMagnitude, 1e300][int(0...8)]
        case 1: return Double(bitPattern: rng.next())
        default: return Double.random(in: -1e6...1e6, using: &rng)
        }
    }

    mutating func string() -> String {
        let count = int(0...12)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<count {
            let v: UInt32
            switch int(0...4) {
            case 0: v = UInt32(int(0...0x7F))
            case 1: v = UInt32(int(0x80...0x7FF))
            case 2: v = UInt32(int(0x800...0xD7FF))
            case 3: v = UInt32(int(0xE000...0xFFFF))
            default: v = UInt32(int(0x10000...0x10FFFF))
            }
            scalars.append(Unicode.Scalar(v) ?? "?")
        }
        return String(scalars)
    }

    mutating func bytes() -> [UInt8] {
        (0..<int(0...16)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    mutating func scalar() -> Value {
        switch int(0...9) {
        case 0: return .none
        case 1: return .bool(chance(50))
        case 2, 3: return integer()
        case 4: return .float(double())
        case 5: return .complex(Complex(real: double(), imaginary: double()))
        case 6: return .bytes(bytes())
        case 7:
            if let channel = channels.randomElement(using: &rng) { return .channel(channel) }
            return .string(string())
        default: return .string(string())
        }
    }

    /// A value Python could use as a dict key or set member.
    mutating func hashable(depth: Int) -> Value {
        if depth <= 0 || chance(70) { return scalar() }
        if chance(60) {
            return .tuple((0..<int(0...3)).map { _ in hashable(depth: depth - 1) })
        }
        return .frozenSet(ValueSet(Self.pythonDistinct((0..<int(0...3)).map { _ in hashable(depth: depth - 1) })))
    }

    /// The members without those Python holds equal to an earlier one (`1` after `True`, `-0.0`
    /// after `0`): `dumps` refuses Swift-built sets and dicts holding such pairs.
    static func pythonDistinct(_ members: [Value]) -> [Value] {
        let structural = Array(ValueSet(members))
        guard let kept = Serializer.pythonDuplicates(structural, merge: { _, _ in }) else { return structural }
        return kept.map { structural[$0] }
    }

    mutating func value(depth: Int) -> Value {
        if depth <= 0 || chance(40) { return scalar() }
        let count = int(0...5)
        switch int(0...5) {
        case 0, 1: return .list((0..<count).map { _ in value(depth: depth - 1) })
        case 2: return .tuple((0..<count).map { _ in value(depth: depth - 1) })
        case 3:
            var dict = ValueDictionary()
            let keys = Self.pythonDistinct((0..<count).map { _ in hashable(depth: depth - 1) })
            for key in keys { dict[key] = value(depth: depth - 1) }
            return .dict(dict)
        case 4: return .set(ValueSet(Self.pythonDistinct((0..<count).map { _ in hashable(depth: depth - 1) })))
        default: return .frozenSet(ValueSet(Self.pythonDistinct((0..<count).map { _ in hashable(depth: depth - 1) })))
        }
    }
}
