// The payload of `Value.dict`: keys and values in two insertion-ordered arrays, with no hash
// table until one is needed. Small dicts are searched linearly; a larger one builds its key
// table on the first lookup and caches it in a box that copies share and threads may race to
// fill. Mutations keep value semantics: a copy never uses a table made for other keys.

import OrderedCollections

/// A dictionary of values in insertion order: the payload of ``Value/dict(_:)``.
///
/// Entries iterate, compare and hash in insertion order; two dictionaries with the same
/// entries in a different order are different values. Setting a key that is present replaces
/// its value in place; a new key goes at the end; removing a key closes the gap.
///
/// Decoding creates no hash table: a dictionary of more than a handful of entries builds one
/// (hashing keys like `Set<Value>` does) on its first lookup, and its copies share it.
public struct ValueDictionary: Sendable {
    // The optional box comes first: the last word must be an array, whose spare bits hold
    // `Value`'s case tag and keep `Value` at 24 bytes (an optional reference has none).

    /// The key table's box: `nil` exactly while `keys.count <= linearSearchLimit`.
    private var keyIndex: KeyIndex?
    /// The keys in insertion order, each once.
    public private(set) var keys: [Value]
    /// The values, in the order of their keys.
    public private(set) var values: [Value]

    /// Up to this many entries, lookups compare keys one by one.
    static let linearSearchLimit = 8

    /// Creates an empty dictionary.
    public init() {
        keys = []
        values = []
    }

    /// Creates an empty dictionary with room for some entries.
    ///
    /// - Parameter minimumCapacity: How many entries to make room for.
    public init(minimumCapacity: Int) {
        self.init()
        reserveCapacity(minimumCapacity)
    }

    /// Creates a dictionary from pairs with distinct keys, in the sequence's order.
    ///
    /// - Parameter pairs: The key-value pairs.
    /// - Precondition: No key occurs twice.
    public init<S: Sequence>(uniqueKeysWithValues pairs: S) where S.Element == (Value, Value) {
        self.init(minimumCapacity: pairs.underestimatedCount)
        for (key, value) in pairs {
            precondition(updateValue(value, forKey: key) == nil, "duplicate key \(key) in ValueDictionary(uniqueKeysWithValues:)")
        }
    }

    /// Creates a dictionary with the entries of an `OrderedDictionary`, in its order.
    ///
    /// - Parameter ordered: The entries.
    public init(_ ordered: OrderedDictionary<Value, Value>) {
        self.init(uncheckedUniqueKeys: ordered.keys.elements, values: ordered.values.elements)
    }

    /// Takes keys known to be distinct and their values (the decoder's path: no hashing).
    init(uncheckedUniqueKeys keys: [Value], values: [Value]) {
        assert(keys.count == values.count)
        self.keys = keys
        self.values = values
        keyIndex = keys.count > Self.linearSearchLimit ? KeyIndex() : nil
    }

    /// The entries as an `OrderedDictionary`.
    public var ordered: OrderedDictionary<Value, Value> {
        OrderedDictionary(uncheckedUniqueKeys: keys, values: values)
    }

    /// The number of entries.
    public var count: Int { keys.count }

    /// Whether there are no entries.
    public var isEmpty: Bool { keys.isEmpty }

    /// The position of a key, or `nil` if it is absent.
    ///
    /// - Parameter key: The key to look for.
    /// - Returns: The entry's index.
    public func index(forKey key: Value) -> Index? {
        offset(of: key).map(Index.init(offset:))
    }

    /// Whether the dictionary has an entry under a key.
    ///
    /// - Parameter key: The key to look for.
    /// - Returns: `true` when the key is present.
    public func contains(key: Value) -> Bool {
        offset(of: key) != nil
    }

    /// The value under a key; setting `nil` removes the entry.
    ///
    /// - Parameter key: The key.
    public subscript(key: Value) -> Value? {
        get { offset(of: key).map { values[$0] } }
        set {
            if let newValue { updateValue(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    /// The value under a text key (``Value/string(_:)``); setting `nil` removes the entry.
    ///
    /// - Parameter key: The text of the key.
    public subscript(key: String) -> Value? {
        get { self[.string(key)] }
        set { self[.string(key)] = newValue }
    }

    /// Sets the value under a key: in place if the key is present, else as a new last entry.
    ///
    /// - Parameters:
    ///   - value: The new value.
    ///   - key: The key.
    /// - Returns: The value that was replaced, or `nil` if the key is new.
    @discardableResult
    public mutating func updateValue(_ value: Value, forKey key: Value) -> Value? {
        if let i = offset(of: key) {
            let old = values[i]
            values[i] = value
            return old
        }
        precondition(keys.count < KeyIndex.maximumCount, "ValueDictionary is full")
        let position = keys.count
        keys.append(key)
        values.append(value)
        updateIndex { $0.insert(KeyIndex.hash(key), at: position) }
        return nil
    }

    /// Removes the entry under a key; later entries move up one position.
    ///
    /// - Parameter key: The key.
    /// - Returns: The value that was removed, or `nil` if the key was absent.
    @discardableResult
    public mutating func removeValue(forKey key: Value) -> Value? {
        guard let i = offset(of: key) else { return nil }
        keys.remove(at: i)
        let old = values.remove(at: i)
        updateIndex { $0.remove(at: i) }
        return old
    }

    /// Removes every entry.
    ///
    /// - Parameter keepCapacity: Whether to keep the storage for reuse.
    public mutating func removeAll(keepingCapacity keepCapacity: Bool = false) {
        keys.removeAll(keepingCapacity: keepCapacity)
        values.removeAll(keepingCapacity: keepCapacity)
        keyIndex = nil
    }

    /// Makes room for entries, so that adding up to that many does not reallocate.
    ///
    /// - Parameter minimumCapacity: How many entries to make room for.
    public mutating func reserveCapacity(_ minimumCapacity: Int) {
        keys.reserveCapacity(minimumCapacity)
        values.reserveCapacity(minimumCapacity)
    }

    /// The position of `key` in `keys`: a scan for small dicts, else the (lazily built) table.
    private func offset(of key: Value) -> Int? {
        guard keyIndex != nil else { return keys.firstIndex(of: key) }
        return keyIndex.unsafelyUnwrapped.find(key, in: keys)
    }

    /// Brings the key table in line with `keys` after a change to them, applying `change` to a
    /// built table. A box shared with copies is never changed, since the copies still hold the
    /// old keys: this value gets a box of its own (with a changed copy of a built table).
    private mutating func updateIndex(_ change: (KeyIndex) -> Void) {
        guard keys.count > Self.linearSearchLimit else {
            keyIndex = nil
            return
        }
        if isKnownUniquelyReferenced(&keyIndex) {
            change(keyIndex!)
        } else if let shared = keyIndex, shared.isBuilt {
            let copy = shared.copy()
            change(copy)
            keyIndex = copy
        } else {
            keyIndex = KeyIndex()
        }
    }
}

extension ValueDictionary: RandomAccessCollection {
    /// A position of an entry.
    public struct Index: Strideable, Hashable, Sendable {
        /// The entry's position in insertion order, from zero.
        public let offset: Int

        @inlinable init(offset: Int) { self.offset = offset }

        /// The distance to another index.
        ///
        /// - Parameter other: Another index.
        /// - Returns: How many entries lie between the two.
        @inlinable public func distance(to other: Index) -> Int { other.offset - offset }

        /// The index some entries away.
        ///
        /// - Parameter n: How many entries to move (negative moves back).
        /// - Returns: The moved index.
        @inlinable public func advanced(by n: Int) -> Index { Index(offset: offset + n) }
    }

    /// An entry: a key and its value.
    public typealias Element = (key: Value, value: Value)

    /// The first entry's index.
    @inlinable public var startIndex: Index { Index(offset: 0) }

    /// The index past the last entry.
    @inlinable public var endIndex: Index { Index(offset: keys.count) }

    /// The entry at a position.
    ///
    /// - Parameter position: A valid index, not `endIndex`.
    @inlinable public subscript(position: Index) -> Element {
        (keys[position.offset], values[position.offset])
    }
}

extension ValueDictionary: ExpressibleByDictionaryLiteral {
    /// Creates a dictionary in the literal's order. A repeated key keeps its first position and
    /// its last value, as in Python.
    ///
    /// - Parameter elements: The key-value pairs.
    public init(dictionaryLiteral elements: (Value, Value)...) {
        self.init(minimumCapacity: elements.count)
        for (key, value) in elements { self[key] = value }
    }
}

extension ValueDictionary: Hashable {
    /// Compares keys and values in order.
    ///
    /// - Parameters:
    ///   - lhs: A dictionary.
    ///   - rhs: Another dictionary.
    /// - Returns: `true` when both hold equal entries in the same order.
    public static func == (lhs: ValueDictionary, rhs: ValueDictionary) -> Bool {
        lhs.keys == rhs.keys && lhs.values == rhs.values
    }

    /// Hashes the entries in order, consistently with `==`.
    ///
    /// - Parameter hasher: The hasher to feed.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(keys.count)
        for i in keys.indices {
            hasher.combine(keys[i])
            hasher.combine(values[i])
        }
    }
}

extension ValueDictionary: CustomStringConvertible {
    /// Python's notation, as in ``Value/description``: `{'a': 1, 2: None}`.
    public var description: String { Value.dict(self).description }
}
