// The decoder's reading primitives: bounds-checked i4/f8/blob reads, the scalar instructions
// (everything that pushes one value without touching the stack), text decoding, and the
// construction of dictionaries from decoded entries with a cheap duplicate check.

import OrderedCollections

extension Serializer.ProgramDecoder {
    typealias Opcode = Serializer.Opcode

    func error(_ code: SerializerError.Code, at offset: Int, _ message: String) -> SerializerError {
        SerializerError(code, offset: baseOffset + offset, message)
    }

    @inline(__always)
    var remaining: Int { input.count - position }

    /// The big-endian 32-bit word at `offset`; the caller checks bounds.
    @inline(__always)
    func readBigEndian32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: input.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    mutating func readInt32(_ opcodeOffset: Int) throws(SerializerError) -> Int32 {
        guard remaining >= 4 else {
            throw error(.truncated, at: opcodeOffset, "input ends inside a 4-byte payload")
        }
        let value = readBigEndian32(position)
        position += 4
        return Int32(bitPattern: value)
    }

    @inline(__always)
    mutating func readUInt64(_ opcodeOffset: Int) throws(SerializerError) -> UInt64 {
        guard remaining >= 8 else {
            throw error(.truncated, at: opcodeOffset, "input ends inside an 8-byte payload")
        }
        let raw = input.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(bigEndian: raw)
    }

    /// Reads an i4 count and checks it is not negative.
    @inline(__always)
    mutating func readCount(_ opcodeOffset: Int) throws(SerializerError) -> Int {
        let n = try readInt32(opcodeOffset)
        guard n >= 0 else {
            throw error(.negativeCount, at: opcodeOffset, "negative count \(n)")
        }
        return Int(n)
    }

    /// Reads a blob (i4 length + bytes), checked against the remaining input before use.
    @inline(__always)
    mutating func readBlob(_ opcodeOffset: Int) throws(SerializerError) -> UnsafeRawBufferPointer {
        let n = try readCount(opcodeOffset)
        guard n <= remaining else {
            throw error(.truncated, at: opcodeOffset, "blob length \(n) exceeds the \(remaining) remaining bytes")
        }
        let blob = UnsafeRawBufferPointer(rebasing: input[position..<(position + n)])
        position += n
        return blob
    }

    /// The byte length of the scalar instruction at `offset` (as `readScalar` would consume
    /// it), or `nil` for other instructions and truncated payloads. Reads lengths only.
    @inline(__always)
    func scalarLength(at offset: Int) -> Int? {
        guard offset < input.count else { return nil }
        let available = input.count - offset
        let length: Int
        switch input[offset] {
        case Opcode.none, Opcode.true, Opcode.false: length = 1
        case Opcode.int, Opcode.long: length = 5
        case Opcode.float: length = 9
        case Opcode.complex: length = 17
        case Opcode.py3String, Opcode.unicode, Opcode.bytes, Opcode.py2String, Opcode.longInt, Opcode.longLong:
            guard available >= 5 else { return nil }
            let n = Int(Int32(bitPattern: readBigEndian32(offset + 1)))
            guard n >= 0 else { return nil }
            length = 5 + n
        default: return nil
        }
        return length <= available ? length : nil
    }

    /// How many `<scalar> <scalar> P` dict entries follow the current position: a cheap scan
    /// (lengths only) so the entry arrays can be sized once.
    func canonicalEntryRun() -> Int {
        var offset = position
        var count = 0
        while let keyLength = scalarLength(at: offset),
              let valueLength = scalarLength(at: offset + keyLength) {
            let end = offset + keyLength + valueLength
            guard end < input.count, input[end] == Opcode.setItem else { break }
            offset = end + 1
            count += 1
        }
        return count
    }

    /// Decodes the instruction at the current position if it pushes a scalar that needs no
    /// context (every opcode but the structural ones and `B`). Otherwise returns `nil` and
    /// leaves the position unchanged.
    @inline(__always)
    mutating func readScalar() throws(SerializerError) -> Value? {
        guard position < input.count else { return nil }
        let at = position
        switch input[position] {
        case Opcode.int, Opcode.long:
            position += 1
            return .int(Int64(try readInt32(at)))
        case Opcode.py3String:
            position += 1
            let blob = try readBlob(at)
            return options.py3strAsPy2str ? .bytes(Array(blob)) : .string(try utf8String(blob, at))
        case Opcode.unicode:
            position += 1
            return .string(try utf8String(try readBlob(at), at))
        case Opcode.none:
            position += 1
            return Value.none
        case Opcode.true:
            position += 1
            return .bool(true)
        case Opcode.false:
            position += 1
            return .bool(false)
        case Opcode.float:
            position += 1
            return .float(Double(bitPattern: try readUInt64(at)))
        case Opcode.complex:
            position += 1
            let real = Double(bitPattern: try readUInt64(at))
            let imaginary = Double(bitPattern: try readUInt64(at))
            return .complex(Complex(real: real, imaginary: imaginary))
        case Opcode.bytes:
            position += 1
            return .bytes(Array(try readBlob(at)))
        case Opcode.py2String:
            position += 1
            let blob = try readBlob(at)
            return options.py2strAsPy3str ? .string(latin1String(blob)) : .bytes(Array(blob))
        case Opcode.longInt, Opcode.longLong:
            position += 1
            let blob = try readBlob(at)
            let scanned = blob.withMemoryRebound(to: UInt8.self) { text in
                DecimalText.scan(text).map { $0.value(in: text) }
            }
            switch scanned {
            case .success(let value): return value
            case .failure(let e): throw error(e.code, at: at, e.message)
            }
        default:
            return nil
        }
    }

    /// Decodes UTF-8 text; invalid UTF-8 is an error, never replaced. ASCII (checked eight bytes
    /// at a time) takes `String(decoding:)`, which is several times cheaper per call than
    /// `String(validating:)`; the two agree on ASCII input.
    func utf8String(_ blob: UnsafeRawBufferPointer, _ at: Int) throws(SerializerError) -> String {
        if Self.isASCII(blob) {
            return String(decoding: blob, as: UTF8.self)
        }
        let text = blob.withMemoryRebound(to: UInt8.self) { String(validating: $0, as: UTF8.self) }
        guard let text else {
            throw error(.invalidUTF8, at: at, "text payload is not valid UTF-8")
        }
        return text
    }

    @inline(__always)
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        var i = 0
        while i + 8 <= n {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < n {
            if bytes[i] & 0x80 != 0 { return false }
            i += 1
        }
        return true
    }

    func latin1String(_ blob: UnsafeRawBufferPointer) -> String {
        if Self.isASCII(blob) {
            return String(decoding: blob, as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: blob.lazy.map { Unicode.Scalar($0) })
        return String(scalars)
    }
}

extension Serializer {
    /// Builds a dictionary from decoded entries in order. A repeated key keeps its first
    /// position and takes the last value, as Python's `d[k] = v` does.
    ///
    /// Duplicates are ruled out first with a throwaway table of cheap hashes; without them the
    /// arrays become the dictionary as they are, and no lasting hash table is built (a large
    /// `ValueDictionary` builds its own on its first lookup).
    static func makeDictionary(keys: [Value], values: [Value]) -> ValueDictionary {
        let n = keys.count
        if mayHoldPythonDuplicates(keys) {
            // Numbers of several kinds, tuples or frozen sets: merge what Python merges (the
            // first key kept, the last value), keep every NaN apart.
            var values = values
            guard let kept = pythonDuplicates(keys, merge: { first, later in values[first] = values[later] }) else {
                return ValueDictionary(uncheckedUniqueKeys: keys, values: values)
            }
            return ValueDictionary(uncheckedUniqueKeys: kept.map { keys[$0] }, values: kept.map { values[$0] })
        }
        // Text, bytes, ints and None only: Python's equality is the structural one.
        if n <= 16 ? !hasDuplicatesSmall(keys) : n < Int(Int32.max) && !hasDuplicates(keys) {
            return ValueDictionary(uncheckedUniqueKeys: keys, values: values)
        }
        var dict = ValueDictionary(minimumCapacity: n)
        for i in 0..<n {
            dict[keys[i]] = values[i]
        }
        return dict
    }

    /// Builds a set from decoded members in order, merging those Python merges (the first kept)
    /// and keeping every NaN apart. Member hashes are computed once per member; a frozen set
    /// member brings its cached hash, so nesting costs nothing more.
    static func makeSet(_ members: [Value]) -> ValueSet {
        let n = members.count
        if mayHoldPythonDuplicates(members) {
            guard let kept = pythonDuplicates(members, merge: { _, _ in }) else {
                return ValueSet(uncheckedMembers: members)
            }
            return ValueSet(uncheckedMembers: kept.map { members[$0] })
        }
        if n <= 16 ? !hasDuplicatesSmall(members) : n < Int(Int32.max) && !hasDuplicates(members) {
            return ValueSet(uncheckedMembers: members)
        }
        return ValueSet(uncheckedMembers: Array(ValueSet(members)))
    }

    /// Whether two keys are equal, by comparing every pair (for a handful of keys).
    private static func hasDuplicatesSmall(_ keys: [Value]) -> Bool {
        for i in keys.indices.dropFirst() {
            for j in 0..<i where keys[i] == keys[j] {
                return true
            }
        }
        return false
    }

    /// Whether two keys are equal, using an open-addressing table whose entries pack hash bits
    /// (a tag) with the key's index, so probes rarely touch the keys themselves.
    ///
    /// The hash here is a cheap seeded mix of the key's bytes (SipHash would cost several times
    /// more). Crafted collisions cannot make it slow: past 64 probes for one key it gives up and
    /// reports a possible duplicate, which sends the caller down the SipHash-based path.
    ///
    /// All keys are hashed before the first probe: the probing loop is then short enough for
    /// the processor to overlap the cache misses of many keys. Entries are 32 bits while the
    /// index leaves room for a tag of 8 bits or more, halving the table.
    private static func hasDuplicates(_ keys: [Value]) -> Bool {
        let n = keys.count
        let hashes = [UInt64](unsafeUninitializedCapacity: n) { hashes, initialized in
            let seed = dedupeSeed
            for i in 0..<n { hashes[i] = dedupeHash(keys[i], seed: seed) }
            initialized = n
        }
        return n < 1 << 24 ? probeForDuplicates(keys, hashes, UInt32.self) : probeForDuplicates(keys, hashes, UInt64.self)
    }

    private static func probeForDuplicates<Entry: FixedWidthInteger & UnsignedInteger>(
        _ keys: [Value], _ hashes: [UInt64], _: Entry.Type
    ) -> Bool {
        let n = keys.count
        var bucketCount = 16
        while bucketCount < 2 * n { bucketCount <<= 1 }
        let mask = bucketCount - 1
        // Entries hold index + 1 in the low bits and the hash's high bits in the rest.
        let indexBits = Int.bitWidth - n.leadingZeroBitCount
        let indexMask = Entry(truncatingIfNeeded: (1 << indexBits) - 1)
        var table = [Entry](repeating: 0, count: bucketCount)
        return table.withUnsafeMutableBufferPointer { table in
            hashes.withUnsafeBufferPointer { hashes in
                for i in 0..<n {
                    let hash = hashes[i]
                    let tag = Entry(truncatingIfNeeded: hash >> (64 - Entry.bitWidth)) & ~indexMask
                    var bucket = Int(truncatingIfNeeded: hash) & mask
                    var probes = 0
                    while true {
                        let entry = table[bucket]
                        if entry == 0 {
                            table[bucket] = tag | Entry(truncatingIfNeeded: i + 1)
                            break
                        }
                        if entry & ~indexMask == tag, keys[Int(entry & indexMask) - 1] == keys[i] {
                            return true
                        }
                        probes += 1
                        if probes > 64 { return true }
                        bucket = (bucket + 1) & mask
                    }
                }
                return false
            }
        }
    }

    /// A per-process random seed for `dedupeHash` (read once per dict: every read of a global
    /// checks that it is initialized).
    private static let dedupeSeed = UInt64.random(in: .min ... .max)

    /// A fast seeded hash consistent with `Value.==`: text by its UTF-8 bytes, integers by value
    /// (a small `.bigInt` like the equal `.int`), everything else by `hashValue`.
    @inline(__always)
    private static func dedupeHash(_ value: Value, seed: UInt64) -> UInt64 {
        switch value {
        case .string(let s):
            if let hash = s.utf8.withContiguousStorageIfAvailable({ mixBytes(UnsafeRawBufferPointer($0), seed: seed) }) {
                return hash
            }
            var s = s
            return s.withUTF8 { mixBytes(UnsafeRawBufferPointer($0), seed: seed) }
        case .int(let i):
            return mix(UInt64(bitPattern: i) ^ seed)
        case .bigInt(let b):
            if let small = b.int64Value { return mix(UInt64(bitPattern: small) ^ seed) }
            return mix(UInt64(bitPattern: Int64(b.hashValue)))
        default:
            return mix(UInt64(bitPattern: Int64(value.hashValue)))
        }
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Hashes bytes with the length; up to 8 bytes (most keys) take one word made of
    /// overlapping loads, longer texts 8 bytes at a time, the last word overlapping.
    @inline(__always)
    private static func mixBytes(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let n = bytes.count
        var h = seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15)
        if n <= 8 {
            let word: UInt64
            if n == 8 {
                word = bytes.loadUnaligned(as: UInt64.self)
            } else if n >= 4 {
                word = UInt64(bytes.loadUnaligned(as: UInt32.self))
                    | UInt64(bytes.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)) << 32
            } else if n > 0 {
                word = UInt64(bytes[0]) | UInt64(bytes[n / 2]) << 8 | UInt64(bytes[n - 1]) << 16
            } else {
                word = 0
            }
            return mix(h ^ word)
        }
        var i = 0
        while i + 8 <= n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        if i < n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)) &* 0x94D0_49BB_1331_11EB
        }
        return mix(h)
    }
}
