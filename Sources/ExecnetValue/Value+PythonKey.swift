// Python's equality for dict keys and set members: which members a Python dict or set would
// merge (1, True, 1.0 and complex(1, 0) are one key; 0.0 and -0.0 are one; a NaN is never equal
// to another NaN). The decoder merges decoded members by this rule, the encoder refuses Swift-built
// values whose members it would merge. `Value ==` stays structural; this file is the other notion.

extension Value {
    /// Python's hash of the value as a dict key or set member, consistent with
    /// ``pythonEquals(_:_:)``, or `nil` when the value equals nothing but itself in Python: it holds
    /// a NaN (each NaN object is distinct) or is not hashable at all (a list, dict or set).
    ///
    /// Frozen sets cache theirs, so hashing a member that holds nested frozen sets costs the
    /// member's own items, not its whole subtree: decoding stays linear in its input.
    var pythonHash: Int? {
        switch self {
        case .string, .bytes, .none, .channel, .channelReference:
            // Within these kinds Python's equality is the structural one (a coincidence with
            // another kind's hash is harmless: `pythonEquals` tells kinds apart).
            return hashValue
        case .int, .bool, .bigInt, .float, .complex:
            return PythonNumber(self)?.hashValue
        case .tuple(let items):
            HashWork.note()
            var hasher = Hasher()
            hasher.combine(9 as UInt8)
            hasher.combine(items.count)
            for item in items {
                guard let h = item.pythonHash else { return nil }
                hasher.combine(h)
            }
            return hasher.finalize()
        case .frozenSet(let members):
            return members.pythonHash
        case .list, .dict, .set:
            return nil
        }
    }

    /// Whether Python holds two dict keys or set members equal: numbers by value across bool,
    /// int, float and complex (`1 == True == 1.0`, `0.0 == -0.0`), a NaN equal to nothing,
    /// tuples item by item, frozen sets as sets, text and bytes by content.
    ///
    /// Two occurrences of a value are never the same Python object here, so a NaN (or a tuple or
    /// frozen set holding one) is unequal even to a structurally identical value.
    static func pythonEquals(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)):
            return sameCodePoints(x, y)
        case let (.int(x), .int(y)):
            return x == y
        case let (.bytes(x), .bytes(y)):
            return x == y
        case (.none, .none):
            return true
        case let (.channel(x), .channel(y)):
            return x === y
        case let (.channelReference(x), .channelReference(y)):
            return x == y
        case let (.tuple(x), .tuple(y)):
            guard x.count == y.count else { return false }
            for i in x.indices where !pythonEquals(x[i], y[i]) { return false }
            return true
        case let (.frozenSet(x), .frozenSet(y)):
            return ValueSet.pythonEquals(x, y)
        default:
            guard let x = PythonNumber(a), let y = PythonNumber(b) else { return false }
            return x == y && !x.isNaN
        }
    }
}

/// A number as Python compares it: integers by value whatever their kind, other floats and
/// complex numbers by value with `-0.0 == 0.0`.
enum PythonNumber: Hashable {
    case integer(Int64)
    case big(BigInteger)
    case real(Double)
    case complex(Double, Double)
    case nan

    var isNaN: Bool { if case .nan = self { true } else { false } }

    /// The number a bool, int, big int, float or complex value stands for; `nil` for other kinds.
    init?(_ value: Value) {
        switch value {
        case .bool(let b): self = .integer(b ? 1 : 0)
        case .int(let i): self = .integer(i)
        case .bigInt(let b):
            if let small = b.int64Value { self = .integer(small) } else { self = .big(b) }
        case .float(let d): self.init(real: d)
        case .complex(let c):
            if c.real.isNaN || c.imaginary.isNaN {
                self = .nan
            } else if c.imaginary == 0 {
                self.init(real: c.real)
            } else {
                // `+ 0.0` turns -0.0 into 0.0, so both hash alike.
                self = .complex(c.real + 0.0, c.imaginary)
            }
        default: return nil
        }
    }

    private init(real d: Double) {
        if d.isNaN {
            self = .nan
        } else if d.isFinite, d.rounded(.towardZero) == d {
            if d >= -0x1p63, d < 0x1p63 {
                self = .integer(Int64(d))
            } else {
                self = .big(BigInteger(exactlyIntegral: d))
            }
        } else {
            self = .real(d)
        }
    }
}

extension BigInteger {
    /// The integer equal to a finite, integral double.
    init(exactlyIntegral d: Double) {
        precondition(d.isFinite && d.rounded(.towardZero) == d)
        let magnitude = d.magnitude
        guard magnitude >= 0x1p63 else {
            self.init(UInt64(magnitude))
            if d < 0 { self = negated() }
            return
        }
        // significand (53 bits) × 2^(exponent - 52), in base-10⁹ limbs.
        let significand = magnitude.significandBitPattern | (1 << 52)
        var shift = Int(magnitude.exponent) - 52
        var limbs = BigInteger(significand).limbs
        while shift > 0 {
            let step = min(shift, 29)
            shift -= step
            var carry: UInt64 = 0
            for i in limbs.indices {
                let product = UInt64(limbs[i]) << step + carry
                limbs[i] = UInt32(product % Self.limbBase)
                carry = product / Self.limbBase
            }
            while carry != 0 {
                limbs.append(UInt32(carry % Self.limbBase))
                carry /= Self.limbBase
            }
        }
        self.init(isNegative: d < 0, limbs: limbs)
    }
}

/// The decoder's and encoder's table of members seen so far, by Python's equality: positions in
/// linear-probing buckets, keyed by ``Value/pythonHash``.
struct PythonMemberTable {
    private var buckets: [Int32]
    private var hashes: [Int]
    private let mask: Int

    /// A table with room for `count` members.
    init(capacity count: Int) {
        var size = 16
        while size < 2 * count { size <<= 1 }
        buckets = [Int32](repeating: -1, count: size)
        hashes = [Int](repeating: 0, count: size)
        mask = size - 1
    }

    /// The position (in `members`) of a member Python holds equal to `value`, whose hash is
    /// `hash`; otherwise, if `position` is given, records it for `value`. Returns `nil` then.
    mutating func findOrInsert(_ value: Value, hash: Int, position: Int?, in members: [Value]) -> Int? {
        var bucket = Int(truncatingIfNeeded: UInt(bitPattern: hash) >> 7) & mask
        while buckets[bucket] >= 0 {
            let other = Int(buckets[bucket])
            if hashes[bucket] == hash, Value.pythonEquals(members[other], value) { return other }
            bucket = (bucket + 1) & mask
        }
        if let position {
            buckets[bucket] = Int32(position)
            hashes[bucket] = hash
        }
        return nil
    }
}

extension Serializer {
    /// Merges members Python holds equal: for each member after the first of its class,
    /// `merge(kept, dropped)` is called with their positions; returns the positions kept, in order,
    /// or `nil` when all are distinct (the common case: nothing is allocated for small inputs).
    static func pythonDuplicates(_ members: [Value], merge: (Int, Int) -> Void) -> [Int]? {
        let n = members.count
        guard n > 1 else { return nil }
        var dropped: [Bool]? = nil
        if n <= 16 {
            // A handful: compare pairs, no hashing (frozen sets compare their cached hashes first).
            for i in 1..<n {
                for j in 0..<i where dropped?[j] != true && Value.pythonEquals(members[j], members[i]) {
                    if dropped == nil { dropped = [Bool](repeating: false, count: n) }
                    dropped![i] = true
                    merge(j, i)
                    break
                }
            }
        } else {
            var table = PythonMemberTable(capacity: n)
            for i in 0..<n {
                guard let hash = members[i].pythonHash else { continue }
                if let j = table.findOrInsert(members[i], hash: hash, position: i, in: members) {
                    if dropped == nil { dropped = [Bool](repeating: false, count: n) }
                    dropped![i] = true
                    merge(j, i)
                }
            }
        }
        guard let dropped else { return nil }
        return (0..<n).filter { !dropped[$0] }
    }

    /// Whether a Swift-built collection's members could hold two that Python merges although
    /// they differ structurally: only numbers of mixed kinds or signed zeros, and tuples or
    /// frozen sets (which may hold those). Strings, bytes, ints and `None` alone cannot.
    static func mayHoldPythonDuplicates(_ members: [Value]) -> Bool {
        guard members.count > 1 else { return false }
        for member in members {
            switch member {
            case .string, .int, .bytes, .none, .channel, .channelReference: continue
            default: return true
            }
        }
        return false
    }

    /// Throws when two of a Swift-built collection's members are ones Python would merge.
    static func checkPythonDistinct(_ members: [Value], _ what: String) throws(SerializerError) {
        guard mayHoldPythonDuplicates(members) else { return }
        var pair: (Int, Int)?
        _ = pythonDuplicates(members) { kept, dropped in if pair == nil { pair = (kept, dropped) } }
        if let (kept, dropped) = pair {
            throw SerializerError(
                .pythonDuplicate,
                "\(what) holds \(members[kept]) and \(members[dropped]), which Python holds equal: one would be lost")
        }
    }
}
