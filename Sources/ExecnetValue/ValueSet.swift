// The payload of `Value.set` and `Value.frozenSet`: members in an array, in the order they were
// added (for decoded sets, the wire order), with their hashes cached in a shared box, so that a
// set nested in sets is hashed once, not once per enclosing level.

import Synchronization

/// The members of a set or frozen set: the payload of ``Value/set(_:)`` and ``Value/frozenSet(_:)``.
///
/// Members keep the order they were added in (a decoded set keeps the order Python sent). Sets
/// built in Swift hold structurally distinct members, as `Set<Value>` would. A decoded set holds
/// the members Python held: those Python calls equal are merged (the first kept, so `{1, True}`
/// decodes as `{1}`), and each NaN stays a member of its own, so a decoded set may hold two
/// structurally equal NaN members, as Python's can.
///
/// Equality is structural and ignores order: two sets are equal when each member of one is
/// structurally equal to a member of the other and they have as many members. The hashes behind
/// equality and membership are computed once per set and shared by its copies.
public struct ValueSet: Sendable {
    /// The members, each once (NaN members of decoded sets excepted), in insertion order.
    public private(set) var members: [Value]
    /// The cached hashes and key table; replaced on every change.
    private var cache: Cache

    /// Creates an empty set.
    public init() {
        members = []
        cache = Cache()
    }

    /// Creates a set of a sequence's members, keeping the first of structurally equal ones.
    ///
    /// - Parameter members: The members, in the order to keep.
    public init<S: Sequence>(_ members: S) where S.Element == Value {
        let all = Array(members)
        if all.count <= ValueDictionary.linearSearchLimit {
            var unique: [Value] = []
            unique.reserveCapacity(all.count)
            for member in all where !unique.contains(member) { unique.append(member) }
            self.members = unique
        } else {
            var seen = Set<Value>(minimumCapacity: all.count)
            self.members = all.filter { seen.insert($0).inserted }
        }
        cache = Cache()
    }

    /// Takes members that are already distinct (the decoder's path).
    init(uncheckedMembers members: [Value]) {
        self.members = members
        cache = Cache(pythonDistinct: true)
    }

    /// The number of members.
    public var count: Int { members.count }

    /// Whether there are no members.
    public var isEmpty: Bool { members.isEmpty }

    /// Whether a structurally equal member is present.
    ///
    /// - Parameter member: The value to look for.
    /// - Returns: `true` when the set holds it.
    public func contains(_ member: Value) -> Bool {
        position(of: member) != nil
    }

    /// Adds a member unless a structurally equal one is present.
    ///
    /// - Parameter member: The value to add.
    /// - Returns: `true` when it was added.
    @discardableResult
    public mutating func insert(_ member: Value) -> Bool {
        guard position(of: member) == nil else { return false }
        members.append(member)
        cache = Cache()
        return true
    }

    /// Removes the member structurally equal to a value.
    ///
    /// - Parameter member: The value to remove.
    /// - Returns: The removed member, or `nil` if there was none.
    @discardableResult
    public mutating func remove(_ member: Value) -> Value? {
        guard let i = position(of: member) else { return nil }
        cache = Cache()
        return members.remove(at: i)
    }

    /// Whether the members are known to hold no two that Python would merge.
    var isPythonDistinct: Bool { cache.pythonDistinct }

    private func position(of member: Value) -> Int? {
        guard members.count > ValueDictionary.linearSearchLimit else { return members.firstIndex(of: member) }
        return cache.index.find(member, in: members)
    }

    /// The set's Python hash (see ``Value/pythonHash``), computed once; `nil` when a member
    /// holds a NaN (so the set equals no other).
    var pythonHash: Int? {
        let state = cache.pythonState.load(ordering: .acquiring)
        if state == Cache.known { return cache.pythonHashValue.load(ordering: .relaxed) }
        if state == Cache.none { return nil }
        var sum = 0
        var unique = false
        for member in members {
            guard let h = member.pythonHash else { unique = true; break }
            sum &+= h
        }
        HashWork.note()
        if unique {
            cache.pythonState.store(Cache.none, ordering: .releasing)
            return nil
        }
        var hasher = Hasher()
        hasher.combine(12 as UInt8)
        hasher.combine(members.count)
        hasher.combine(sum)
        let h = hasher.finalize()
        cache.pythonHashValue.store(h, ordering: .relaxed)
        cache.pythonState.store(Cache.known, ordering: .releasing)
        return h
    }

    /// Python's equality of two frozen sets as members: same size, and each member of one
    /// equal (in Python's sense) to a member of the other.
    static func pythonEquals(_ a: ValueSet, _ b: ValueSet) -> Bool {
        guard a.count == b.count, let ha = a.pythonHash, let hb = b.pythonHash, ha == hb else { return false }
        if a.count <= 16 {
            return a.members.allSatisfy { x in b.members.contains { Value.pythonEquals(x, $0) } }
        }
        var table = PythonMemberTable(capacity: b.count)
        for (i, member) in b.members.enumerated() {
            guard let h = member.pythonHash else { return false }
            _ = table.findOrInsert(member, hash: h, position: i, in: b.members)
        }
        for member in a.members {
            guard let h = member.pythonHash,
                  table.findOrInsert(member, hash: h, position: nil, in: b.members) != nil else { return false }
        }
        return true
    }

    /// The order-independent structural hash of the members, computed once.
    private var structuralHash: Int {
        if cache.structuralState.load(ordering: .acquiring) { return cache.structuralHashValue.load(ordering: .relaxed) }
        var sum = 0
        for member in members { sum &+= member.hashValue }
        HashWork.note()
        cache.structuralHashValue.store(sum, ordering: .relaxed)
        cache.structuralState.store(true, ordering: .releasing)
        return sum
    }

    /// Hashes and key table, shared by copies of an unchanged set; each computed at most once
    /// (threads may race to compute one; they store the same value).
    private final class Cache: Sendable {
        static let unknown: UInt8 = 0
        static let known: UInt8 = 1
        static let none: UInt8 = 2

        let index = KeyIndex()
        let pythonDistinct: Bool
        let pythonState = Atomic<UInt8>(0)
        let pythonHashValue = Atomic<Int>(0)
        let structuralState = Atomic<Bool>(false)
        let structuralHashValue = Atomic<Int>(0)

        init(pythonDistinct: Bool = false) {
            self.pythonDistinct = pythonDistinct
        }
    }
}

extension ValueSet: RandomAccessCollection {
    /// The first member's position.
    @inlinable public var startIndex: Int { 0 }

    /// The position past the last member.
    @inlinable public var endIndex: Int { members.count }

    /// The member at a position.
    ///
    /// - Parameter position: A valid position, not `endIndex`.
    @inlinable public subscript(position: Int) -> Value { members[position] }
}

extension ValueSet: ExpressibleByArrayLiteral {
    /// Creates a set of the literal's members, keeping the first of structurally equal ones.
    ///
    /// - Parameter elements: The members.
    public init(arrayLiteral elements: Value...) {
        self.init(elements)
    }
}

extension ValueSet: Hashable {
    /// Compares members structurally, ignoring order.
    ///
    /// - Parameters:
    ///   - lhs: A set.
    ///   - rhs: Another set.
    /// - Returns: `true` when both hold the same members.
    public static func == (lhs: ValueSet, rhs: ValueSet) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.cache === rhs.cache { return true }
        // Equal sizes and order-free hash sums, then each member of one found in the other: one
        // direction only, so nested sets compare in linear time (the other direction would double
        // the work per level). The sums also tell `{nan, nan}` from `{nan, 1.0}`.
        if lhs.structuralHash != rhs.structuralHash { return false }
        return lhs.members.allSatisfy(rhs.contains)
    }

    /// Hashes the members independently of their order, consistently with `==`.
    ///
    /// - Parameter hasher: The hasher to feed.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(members.count)
        hasher.combine(structuralHash)
    }
}

extension ValueSet: CustomStringConvertible {
    /// Python's notation of a set: `{1, 'a'}`, or `set()` when empty.
    public var description: String { Value.set(self).description }
}
