// `execnet-bench crosscheck`: the Swift half of scripts/cross-check.sh. Decodes and re-encodes
// values Python execnet wrote (checking bytes and repr where they are deterministic), and writes
// values of its own, with a structural description Python compares its decoding against.

import ArgumentParser
import Execnet
import Foundation

struct CrossCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crosscheck",
        abstract: "Swift side of the cross-implementation check with Python execnet (see scripts/cross-check.sh).")

    @Option(help: "Lines from Python: <hex of execnet.dumps> TAB <1 if bytes and repr are deterministic, else 0> TAB <repr>.")
    var `in`: String

    @Option(help: "Where to write the re-encoding (hex) of each input value, one per line.")
    var out: String

    @Option(help: "How many values of Swift's own to generate.")
    var generate = 0

    @Option(help: "Seed of the Swift value generator.")
    var seed: UInt64 = 1

    @Option(help: "Where to write the generated values: <hex> TAB <structure as JSON> TAB <repr, or empty when it holds sets>.")
    var generatedOut: String?

    mutating func run() throws {
        let lines = try String(contentsOfFile: self.in, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        var output = ""
        var failures: [String] = []
        for (index, line) in lines.enumerated() {
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let bytes = Hex.decode(fields[0]) else {
                failures.append("line \(index): malformed")
                output += "\n"
                continue
            }
            do {
                let value = try loads(bytes)
                let again = try dumps(value)
                output += Hex.encode(again) + "\n"
                if fields[1] == "1" {
                    if again != bytes { failures.append("#\(index): re-encoding differs: \(Hex.encode(again)) vs \(fields[0])") }
                    if value.description != fields[2] { failures.append("#\(index): description \(value.description) vs repr \(fields[2])") }
                } else if try loads(again) != value {
                    failures.append("#\(index): re-encoding does not decode to the same value")
                }
            } catch {
                failures.append("#\(index): \(error) for \(fields[0])")
                output += "\n"
            }
        }
        try output.write(toFile: out, atomically: true, encoding: .utf8)

        if generate > 0, let generatedOut {
            var generator = PythonCompatibleValues(seed: seed)
            var generated = ""
            for _ in 0..<generate {
                let value = generator.value(depth: 4)
                var tree = ""
                Tree.append(value, to: &tree)
                guard let bytes = try Self.dumpsUnlessMerged(value) else {
                    // Members Python would merge (1 and True, 0.0 and -0.0, (1,) and (True,)):
                    // refused, not silently merged; Python checks that it merges them ('-').
                    generated += "-\t" + tree + "\t\n"
                    continue
                }
                let repr = Tree.containsSet(value) ? "" : value.description
                generated += Hex.encode(bytes) + "\t" + tree + "\t" + repr + "\n"
            }
            try generated.write(toFile: generatedOut, atomically: true, encoding: .utf8)
        }

        for failure in failures.prefix(20) {
            FileHandle.standardError.write(Data(("python->swift mismatch " + failure + "\n").utf8))
        }
        print("swift: \(lines.count - failures.count)/\(lines.count) python values decoded and re-encoded consistently, \(generate) generated")
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

enum Hex {
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = nibble(digits[i]), let low = nibble(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The structure of a value as JSON, for Python to rebuild and compare: `["i", "123"]`,
/// `["f", "<16 hex digits of the bits>"]`, `["d", [[k, v], …]]`, `["S", [...]]` and so on.
enum Tree {
    static func append(_ value: Value, to out: inout String) {
        switch value {
        case .none: out += "[\"n\"]"
        case .bool(let b): out += b ? "[\"b\",true]" : "[\"b\",false]"
        case .int(let i): out += "[\"i\",\"\(i)\"]"
        case .bigInt(let b): out += "[\"i\",\"\(b)\"]"
        case .float(let d): out += "[\"f\",\"\(bits(d))\"]"
        case .complex(let c): out += "[\"c\",\"\(bits(c.real))\",\"\(bits(c.imaginary))\"]"
        case .bytes(let b): out += "[\"y\",\"\(Hex.encode(b))\"]"
        case .string(let s):
            out += "[\"s\","
            appendJSONString(s, to: &out)
            out += "]"
        case .list(let items): appendItems("l", items, to: &out)
        case .tuple(let items): appendItems("t", items, to: &out)
        case .set(let members): appendItems("S", Array(members), to: &out)
        case .frozenSet(let members): appendItems("F", Array(members), to: &out)
        case .dict(let entries):
            out += "[\"d\",["
            for (index, (key, item)) in entries.enumerated() {
                if index > 0 { out += "," }
                out += "["
                append(key, to: &out)
                out += ","
                append(item, to: &out)
                out += "]"
            }
            out += "]]"
        case .channel(let c): out += "[\"channel\",\(c.id)]"
        case .channelReference(let id): out += "[\"channel\",\(id)]"
        }
    }

    private static func appendItems(_ tag: String, _ items: [Value], to out: inout String) {
        out += "[\"\(tag)\",["
        for (index, item) in items.enumerated() {
            if index > 0 { out += "," }
            append(item, to: &out)
        }
        out += "]]"
    }

    private static func bits(_ d: Double) -> String {
        let hex = String(d.bitPattern, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func appendJSONString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func containsSet(_ value: Value) -> Bool {
        switch value {
        case .set, .frozenSet: true
        case .list(let items), .tuple(let items): items.contains(where: containsSet)
        case .dict(let entries): entries.keys.contains(where: containsSet) || entries.values.contains(where: containsSet)
        default: false
        }
    }
}

extension CrossCheck {
    /// The encoding of `value`, or `nil` if it holds members Python would merge (which Swift refuses).
    static func dumpsUnlessMerged(_ value: Value) throws -> [UInt8]? {
        do {
            return try dumps(value)
        } catch where error.code == .pythonDuplicate {
            return nil
        }
    }
}

/// Random values for Python to read back as the same structure. Dict keys and set members are
/// mostly kinds Python does not merge with other kinds of equal value; one in twenty is a member
/// Python merges (1, True, 1.0; 0.0, -0.0; (1,), (True,)), which Swift refuses to encode when
/// two meet, or a NaN (distinct payloads: each stays its own member, in Python too).
struct PythonCompatibleValues {
    var rng: SplitMix64

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    /// Code points from ranges whose Unicode properties are stable across Python and Swift
    /// versions, so both print the same repr.
    mutating func string() -> String {
        let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x00...0x1F, 0x7F...0xFF, 0x370...0x3FF, 0x400...0x4FF,
                                             0x2000...0x206F, 0x4E00...0x4FFF, 0xE000...0xE0FF, 0x1F600...0x1F64F, 0xFFF0...0xFFFF]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<int(0...10) {
            let range = ranges[int(0...100) < 50 ? 0 : int(1...(ranges.count - 1))]
            scalars.append(Unicode.Scalar(UInt32.random(in: range, using: &rng)) ?? "?")
        }
        return String(scalars)
    }

    mutating func integer() -> Value {
        switch int(0...5) {
        case 0: return .int(Int64(int(-5...5)))
        case 1: return .int(Int64(Int32.random(in: .min ... .max, using: &rng)))
        case 2: return .int(Int64.random(in: .min ... .max, using: &rng))
        case 3: return .int([Int64(Int32.max) + 1, Int64(Int32.min) - 1, .max, .min][int(0...3)])
        case 4: return Value(UInt64.random(in: 0 ... .max, using: &rng))
        default:
            var digits = String(int(1...9))
            for _ in 0..<int(18...80) { digits += String(int(0...9)) }
            return (try? Value.integer(fromDecimal: (int(0...1) == 0 ? "-" : "") + digits)) ?? .none
        }
    }

    mutating func double() -> Double {
        switch int(0...3) {
        case 0: return [0.0, -0.0, .infinity, -.infinity, .nan, 1.5, 0.1, 1e16, 1e-5, 123456.789][int(0...9)]
        case 1: return Double(bitPattern: rng.next())
        default: return Double.random(in: -1e6...1e6, using: &rng)
        }
    }

    /// A member Python merges with others of equal value, or a NaN (alone or in a tuple).
    mutating func merging() -> Value {
        if int(0...9) < 2 {
            let nan = Value.float(Double(nan: Double.RawSignificand(int(0...1_000)), signaling: false))
            return int(0...9) < 7 ? nan : .tuple([nan])
        }
        // Spelled as cases, not literals: a long heterogeneous literal list is slow to type-check.
        var members: [Value] = []
        members += [.int(1), .bool(true), .float(1.0), .complex(Complex(real: 1, imaginary: 0))]
        members += [.int(0), .bool(false), .float(0.0), .float(-0.0), .complex(Complex(real: 0, imaginary: -0.0))]
        members += [.tuple([.int(1)]), .tuple([.bool(true)]), .tuple([.float(1.0)])]
        members += [.frozenSet(ValueSet([.int(1)])), .frozenSet(ValueSet([.bool(true)]))]
        let big: Value = (try? Value.integer(fromDecimal: "1180591620717411303424")) ?? Value.none
        members += [big, .float(0x1p70), .float(1.5), .complex(Complex(real: 1.5, imaginary: 0))]
        members += [.string("1"), .bytes([0x31]), Value.none]
        return members[int(0...(members.count - 1))]
    }

    mutating func key(depth: Int) -> Value {
        if int(0...19) == 0 { return merging() }
        if depth > 0, int(0...9) < 2 {
            if int(0...1) == 0 { return .tuple((0..<int(0...3)).map { _ in key(depth: depth - 1) }) }
            return .frozenSet(ValueSet((0..<int(0...3)).map { _ in key(depth: depth - 1) }))
        }
        switch int(0...4) {
        case 0: return .none
        case 1: return integer()
        case 2: return .bytes((0..<int(0...6)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        default: return .string(string())
        }
    }

    mutating func scalar() -> Value {
        switch int(0...7) {
        case 0: return .bool(int(0...1) == 0)
        case 1: return .float(double())
        case 2: return .complex(Complex(real: double(), imaginary: double()))
        default: return key(depth: 0)
        }
    }

    mutating func value(depth: Int) -> Value {
        if depth <= 0 || int(0...9) < 4 { return scalar() }
        let count = int(0...5)
        switch int(0...5) {
        case 0, 1: return .list((0..<count).map { _ in value(depth: depth - 1) })
        case 2: return .tuple((0..<count).map { _ in value(depth: depth - 1) })
        case 3:
            var entries = ValueDictionary()
            if int(0...9) == 0 {
                // Canonically equivalent, distinct in Python: both keys must survive.
                entries["\u{E9}"] = value(depth: depth - 1)
                entries["e\u{301}"] = value(depth: depth - 1)
            }
            for _ in 0..<count { entries[key(depth: depth - 1)] = value(depth: depth - 1) }
            return .dict(entries)
        case 4: return .set(ValueSet((0..<count).map { _ in key(depth: depth - 1) }))
        default: return .frozenSet(ValueSet((0..<count).map { _ in key(depth: depth - 1) }))
        }
    }
}

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
