// Structural equality and hashing of `Value`: strict about kinds (bool, int and float never
// mix; list ≠ tuple; set ≠ frozenset), floats and complex numbers by bit pattern, channels by
// identity, dictionaries in order. Also the Python notion of "hashable" the codec enforces.

import Synchronization

/// A count of the containers hashed while counting is on: the regression tests' measure of the
/// work decoding does (never a clock). Off, it costs one relaxed load per container hashed.
enum HashWork {
    static let counting = Atomic<Bool>(false)
    static let count = Atomic<Int>(0)

    @inline(__always)
    static func note() {
        if counting.load(ordering: .relaxed) { count.add(1, ordering: .relaxed) }
    }

    /// Runs `body` with counting on and returns how many containers it hashed.
    static func measure(_ body: () throws -> Void) rethrows -> Int {
        counting.store(true, ordering: .relaxed)
        defer { counting.store(false, ordering: .relaxed) }
        let start = count.load(ordering: .relaxed)
        try body()
        return count.load(ordering: .relaxed) - start
    }
}

extension Value: Hashable {
    /// Compares two values structurally.
    ///
    /// Kinds never mix (`.bool(true) != .int(1) != .float(1.0)`), floats compare by bit pattern,
    /// text compares by code points as in Python (so `"é"` and `"e\u{301}"` differ, although
    /// Swift's `String` calls them equal),
    /// dictionaries compare entries in order, channels compare by identity. A `.bigInt` equal to
    /// a number within `Int64` equals the matching `.int`.
    ///
    /// - Parameters:
    ///   - lhs: A value.
    ///   - rhs: Another value.
    /// - Returns: `true` when the values are structurally identical.
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.none, .none):
            return true
        case let (.bool(a), .bool(b)):
            return a == b
        case let (.int(a), .int(b)):
            return a == b
        case let (.bigInt(a), .bigInt(b)):
            return a == b
        case let (.int(a), .bigInt(b)), let (.bigInt(b), .int(a)):
            return b.int64Value == a
        case let (.float(a), .float(b)):
            return a.bitPattern == b.bitPattern
        case let (.complex(a), .complex(b)):
            return a == b
        case let (.bytes(a), .bytes(b)):
            return a == b
        case let (.string(a), .string(b)):
            return sameCodePoints(a, b)
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            return a == b
        case let (.dict(a), .dict(b)):
            return a == b
        case let (.set(a), .set(b)), let (.frozenSet(a), .frozenSet(b)):
            return a == b
        case let (.channel(a), .channel(b)):
            return a === b
        case let (.channelReference(a), .channelReference(b)):
            return a == b
        default:
            return false
        }
    }

    /// Hashes the value consistently with `==`.
    ///
    /// Text and integers, the usual dictionary keys, are hashed without a kind tag for speed;
    /// the other kinds add one. Cross-kind collisions are harmless since `==` tells kinds apart.
    ///
    /// - Parameter hasher: The hasher to feed.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .string(let s):
            // The UTF-8 bytes, consistent with code-point equality (String's own hash
            // would first normalize, which is slower and coarser). Borrowed, not copied, when
            // the string is contiguous.
            if s.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
                var s = s
                s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            }
            hasher.combine(0xFF as UInt8)
        case .int(let i):
            hasher.combine(i)
        case .none:
            hasher.combine(0 as UInt8)
        case .bool(let b):
            hasher.combine(1 as UInt8)
            hasher.combine(b)
        case .bigInt(let b):
            if let small = b.int64Value {
                hasher.combine(small)
            } else {
                hasher.combine(3 as UInt8)
                hasher.combine(b)
            }
        case .float(let d):
            hasher.combine(4 as UInt8)
            hasher.combine(d.bitPattern)
        case .complex(let c):
            hasher.combine(5 as UInt8)
            hasher.combine(c)
        case .bytes(let b):
            hasher.combine(6 as UInt8)
            hasher.combine(b)
        case .list(let items):
            HashWork.note()
            hasher.combine(8 as UInt8)
            hasher.combine(items)
        case .tuple(let items):
            HashWork.note()
            hasher.combine(9 as UInt8)
            hasher.combine(items)
        case .dict(let d):
            HashWork.note()
            hasher.combine(10 as UInt8)
            hasher.combine(d)
        case .set(let s):
            hasher.combine(11 as UInt8)
            hasher.combine(s)
        case .frozenSet(let s):
            hasher.combine(12 as UInt8)
            hasher.combine(s)
        case .channel(let c):
            hasher.combine(13 as UInt8)
            hasher.combine(ObjectIdentifier(c))
        case .channelReference(let id):
            hasher.combine(14 as UInt8)
            hasher.combine(id)
        }
    }

    /// Whether two strings hold the same code points (the same UTF-8 bytes).
    static func sameCodePoints(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        // Borrowed when contiguous (nearly always); copied into contiguous form otherwise.
        if let same = a.utf8.withContiguousStorageIfAvailable({ pa in
            b.utf8.withContiguousStorageIfAvailable { pb in sameBytes(pa, pb) }
        }), let same {
            return same
        }
        var a = a
        var b = b
        return a.withUTF8 { pa in b.withUTF8 { pb in sameBytes(pa, pb) } }
    }

    private static func sameBytes(_ pa: UnsafeBufferPointer<UInt8>, _ pb: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = pa.count
        guard n > 0, let x = pa.baseAddress, let y = pb.baseAddress else { return true }
        if x == y { return true }
        let rx = UnsafeRawPointer(x)
        let ry = UnsafeRawPointer(y)
        var i = 0
        while i + 8 <= n {
            if rx.loadUnaligned(fromByteOffset: i, as: UInt64.self) != ry.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < n {
            if x[i] != y[i] { return false }
            i += 1
        }
        return true
    }

    /// Whether Python would accept the value as a dict key or set member: everything except
    /// lists, dicts and (mutable) sets, and tuples that contain one of those at any depth.
    ///
    /// The serializer refuses unhashable keys and members in both directions, so that what
    /// `dumps` writes Python can read. Nested tuples are walked without recursion.
    public var isPythonHashable: Bool {
        switch self {
        case .list, .dict, .set:
            return false
        case .tuple(let items):
            var pending: [[Value]] = [items]
            while let next = pending.popLast() {
                for item in next {
                    switch item {
                    case .list, .dict, .set: return false
                    case .tuple(let inner): pending.append(inner)
                    default: continue
                    }
                }
            }
            return true
        default:
            return true
        }
    }
}
