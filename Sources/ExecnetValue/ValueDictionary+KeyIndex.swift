// The key table of a large `ValueDictionary`: positions of keys in linear-probing buckets,
// built on the first lookup and published once through an atomic pointer, so that lookups
// from any number of threads read it without locks or reference counting.

import Synchronization

/// A large dictionary's key table, in linear-probing buckets of 0 (empty) or the upper 32 bits
/// of the key's `hashValue` (which also pick the bucket) over its position + 1: probes rarely
/// read a key, and the table regrows or drops a position without hashing again.
///
/// The table is built on the first lookup and published once with a compare-and-exchange (a
/// thread that loses the race frees its own). Lookups then only read it. Only a dictionary whose
/// box is uniquely referenced changes a built table, so no other thread can be reading it.
final class KeyIndex: @unchecked Sendable {
    static let maximumCount = Int(UInt32.max) - 1
    private static let hashMask: UInt64 = 0xFFFF_FFFF_0000_0000
    /// `nil` until built; then the bucket count, the entry count and the buckets.
    private let table = Atomic<UnsafeMutablePointer<UInt64>?>(nil)

    init() {}

    deinit {
        table.load(ordering: .acquiring)?.deallocate()
    }

    var isBuilt: Bool { table.load(ordering: .acquiring) != nil }

    /// The hash bits a bucket stores for a key: Swift's seeded hash, safe against flooding.
    static func hash(_ key: Value) -> UInt64 {
        UInt64(UInt(bitPattern: key.hashValue)) & hashMask
    }

    /// A copy with its own copy of the (built) table.
    func copy() -> KeyIndex {
        let copy = KeyIndex()
        if let old = table.load(ordering: .acquiring) {
            let new = Self.allocate(buckets: Int(old[0]))
            new.update(from: old, count: 2 + Int(old[0]))
            copy.table.store(new, ordering: .releasing)
        }
        return copy
    }

    /// The position of `key` in `keys` (the keys the table was or will be built from).
    func find(_ key: Value, in keys: [Value]) -> Int? {
        let table = self.table.load(ordering: .acquiring) ?? build(keys)
        let hash = Self.hash(key)
        let mask = Int(table[0]) - 1
        var bucket = Int(truncatingIfNeeded: hash >> 32) & mask
        while true {
            let entry = table[2 + bucket]
            if entry == 0 { return nil }
            if entry & Self.hashMask == hash {
                let position = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
                if keys[position] == key { return position }
            }
            bucket = (bucket + 1) & mask
        }
    }

    private func build(_ keys: [Value]) -> UnsafeMutablePointer<UInt64> {
        var size = 16
        while size < 2 * keys.count { size <<= 1 }
        let new = Self.allocate(buckets: size)
        for i in keys.indices { Self.place(Self.hash(keys[i]) | UInt64(i + 1), in: new) }
        new[1] = UInt64(keys.count)
        let (published, current) = table.compareExchange(expected: nil, desired: new, ordering: .acquiringAndReleasing)
        if published { return new }
        new.deallocate()
        return current!
    }

    /// Adds a key (by its `hash(_:)`) at a position. Only on a built table of a unique box.
    func insert(_ hash: UInt64, at position: Int) {
        guard var table = table.load(ordering: .acquiring) else { return }
        if 2 * (Int(table[1]) + 1) > Int(table[0]) { table = rebuild(table, removing: nil, buckets: 2 * Int(table[0])) }
        Self.place(hash | UInt64(position + 1), in: table)
        table[1] += 1
    }

    /// Forgets the key at a position and moves later positions up by one. Only on a built
    /// table of a unique box.
    func remove(at position: Int) {
        guard let table = table.load(ordering: .acquiring) else { return }
        rebuild(table, removing: UInt64(position + 1), buckets: Int(table[0]))[1] -= 1
    }

    /// Re-places the entries of `old` into a new table of `buckets` buckets, which replaces it,
    /// leaving out `removed` (a stored position) and renumbering the positions after it.
    @discardableResult
    private func rebuild(_ old: UnsafeMutablePointer<UInt64>, removing removed: UInt64?, buckets: Int) -> UnsafeMutablePointer<UInt64> {
        let new = Self.allocate(buckets: buckets)
        new[1] = old[1]
        for bucket in 0..<Int(old[0]) where old[2 + bucket] != 0 {
            let entry = old[2 + bucket]
            guard let removed else { Self.place(entry, in: new); continue }
            let position = entry & 0xFFFF_FFFF
            if position != removed { Self.place(position > removed ? entry - 1 : entry, in: new) }
        }
        old.deallocate()
        table.store(new, ordering: .releasing)
        return new
    }

    private static func allocate(buckets: Int) -> UnsafeMutablePointer<UInt64> {
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 + buckets)
        table.initialize(repeating: 0, count: 2 + buckets)
        table[0] = UInt64(buckets)
        return table
    }

    private static func place(_ entry: UInt64, in table: UnsafeMutablePointer<UInt64>) {
        let mask = Int(table[0]) - 1
        var bucket = Int(truncatingIfNeeded: entry >> 32) & mask
        while table[2 + bucket] != 0 { bucket = (bucket + 1) & mask }
        table[2 + bucket] = entry
    }
}
