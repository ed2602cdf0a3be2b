// The decoder: runs the postfix program of format version 2 on an explicit stack, without
// recursion. Canonical runs (`F i <scalar> P` into a fresh list, `<scalar> <scalar> P` into a
// dict) bypass the stack; everything else goes through the general stack machine.

extension Serializer {
    /// Decodes an unversioned program (a channel payload: program + `Q`, no version byte).
    ///
    /// Beyond Python's checks, this decoder rejects what Python lets through by accident: a
    /// count larger than the stack, negative counts, list items set out of order or left unset.
    /// It accepts bytes after the `Q` (ignored, as in Python), duplicate dict keys (the last
    /// value wins, at the first key's position), and `H` text in any form Python's `int()` reads.
    ///
    /// - Parameters:
    ///   - bytes: The encoded program.
    ///   - options: How `M` and `N` payloads decode (Python's `strconfig`).
    ///   - resolveChannel: Looks up (or creates) the channel for a `B` id; `nil` makes `B` an error.
    ///   - baseOffset: Added to error offsets (1 when the caller stripped a version byte).
    /// - Returns: The decoded value.
    /// - Throws: ``SerializerError`` for malformed input, or whatever `resolveChannel` throws.
    @inlinable package static func decodeInternal(
        _ bytes: UnsafeRawBufferPointer,
        options: StringOptions = .channelDefault,
        resolveChannel: ((Int32) throws -> Channel)?,
        baseOffset: Int = 0
    ) throws -> Value {
        // The commonest payload by far, a small int (`F`, 4 bytes big-endian, `Q`), skips the
        // program machinery: a stream of them costs a few instructions each instead of hundreds.
        if bytes.count == 6, bytes[0] == Opcode.int, bytes[5] == Opcode.stop {
            let raw = UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])
            return .int(Int64(Int32(bitPattern: raw)))
        }
        var decoder = ProgramDecoder(input: bytes, options: options, resolveChannel: resolveChannel, baseOffset: baseOffset)
        return try decoder.run()
    }

    /// Decodes an unversioned program held in an array; see ``decodeInternal(_:options:resolveChannel:baseOffset:)``.
    ///
    /// - Parameters:
    ///   - bytes: The encoded program.
    ///   - options: How `M` and `N` payloads decode.
    ///   - resolveChannel: Looks up the channel for a `B` id; `nil` makes `B` an error.
    /// - Returns: The decoded value.
    /// - Throws: ``SerializerError`` for malformed input, or whatever `resolveChannel` throws.
    package static func decodeInternal(
        _ bytes: [UInt8],
        options: StringOptions = .channelDefault,
        resolveChannel: ((Int32) throws -> Channel)?
    ) throws -> Value {
        try bytes.withUnsafeBytes { raw in
            try decodeInternal(raw, options: options, resolveChannel: resolveChannel)
        }
    }

    /// A stack entry. Lists and dicts under construction live in side stacks (they are always
    /// the most recent open ones, since the main stack is LIFO) and are marked by `kind`.
    struct Slot {
        static let hashable: UInt8 = 0
        static let unhashable: UInt8 = 1
        static let openList: UInt8 = 2
        static let openDict: UInt8 = 3

        var value: Value
        /// Container nesting of the value: 0 for scalars, 1 + the deepest item for containers.
        var depth: Int32
        var kind: UInt8
    }

    struct OpenList {
        var items: [Value]
        var declared: Int
        var depth: Int32
    }

    struct OpenDict {
        var keys: [Value]
        var values: [Value]
        var depth: Int32 = 1

        init() {
            keys = []
            values = []
            keys.reserveCapacity(8)
            values.reserveCapacity(8)
        }
    }

    @usableFromInline struct ProgramDecoder {
        let input: UnsafeRawBufferPointer
        let options: StringOptions
        let resolveChannel: ((Int32) throws -> Channel)?
        let baseOffset: Int
        /// Whether `B` decodes as ``Value/channelReference(_:)`` when there is no resolver.
        var channelPlaceholders = false
        var position = 0
        var stack: [Slot] = []
        var lists: [OpenList] = []
        var dicts: [OpenDict] = []

        @usableFromInline init(input: UnsafeRawBufferPointer, options: StringOptions, resolveChannel: ((Int32) throws -> Channel)?, baseOffset: Int) {
            self.input = input
            self.options = options
            self.resolveChannel = resolveChannel
            self.baseOffset = baseOffset
        }

        @usableFromInline mutating func run() throws -> Value {
            while true {
                if let scalar = try readScalar() {
                    stack.append(Slot(value: scalar, depth: 0, kind: Slot.hashable))
                    continue
                }
                let at = position
                guard position < input.count else {
                    throw error(.truncated, at: at, "input ends before STOP")
                }
                let opcode = input[position]
                position += 1
                switch opcode {
                case Opcode.setItem:
                    try setItem(at)
                    try fill()
                case Opcode.newList:
                    let n = try readCount(at)
                    // Each item needs at least F + i4 + a 1-byte value + P.
                    guard n <= remaining / 7 else {
                        throw error(.truncated, at: at, "list of \(n) items cannot fit in the \(remaining) remaining bytes")
                    }
                    var items: [Value] = []
                    items.reserveCapacity(n)
                    lists.append(OpenList(items: items, declared: n, depth: 1))
                    stack.append(Slot(value: .none, depth: 0, kind: Slot.openList))
                    try fill()
                case Opcode.newDict:
                    dicts.append(OpenDict())
                    stack.append(Slot(value: .none, depth: 0, kind: Slot.openDict))
                    try fill()
                case Opcode.buildTuple:
                    let n = try readCount(at)
                    let (items, depth, hashable) = try popItems(n, at)
                    try pushContainer(.tuple(items), depth: depth, hashable: hashable, at: at)
                case Opcode.set, Opcode.frozenSet:
                    let n = try readCount(at)
                    let (items, depth, hashable) = try popItems(n, at)
                    guard hashable else {
                        throw error(.unhashable, at: at, "unhashable set member (a list, dict or set)")
                    }
                    let members = Serializer.makeSet(items)
                    try pushContainer(opcode == Opcode.set ? .set(members) : .frozenSet(members),
                                      depth: depth, hashable: opcode == Opcode.frozenSet, at: at)
                case Opcode.channel:
                    let id = try readInt32(at)
                    if resolveChannel == nil, channelPlaceholders {
                        stack.append(Slot(value: .channelReference(id), depth: 0, kind: Slot.hashable))
                        continue
                    }
                    guard let resolveChannel else {
                        throw error(.channelOutsideGateway, at: at, "channel reference \(id) outside a gateway")
                    }
                    stack.append(Slot(value: .channel(try resolveChannel(id)), depth: 0, kind: Slot.hashable))
                case Opcode.stop:
                    guard stack.count == 1 else {
                        throw error(.stackMismatch, at: at, "STOP with \(stack.count) values on the stack, expected 1")
                    }
                    return try pop(at: at).value
                default:
                    throw error(.unknownOpcode, at: at, "unknown opcode 0x\(String(opcode, radix: 16))")
                }
            }
        }

        /// Consumes canonical item runs into the open list or dict on top of the stack:
        /// `F <next index> <scalar> P` for lists, `<scalar> <scalar> P` for dicts. Stops, leaving
        /// the input where the run ends, at anything else (the general loop takes over).
        private mutating func fill() throws(SerializerError) {
            guard let kind = stack.last?.kind else { return }
            if kind == Slot.openList {
                let top = lists.count - 1
                let declared = lists[top].declared
                var count = lists[top].items.count
                while count < declared {
                    let start = position
                    guard remaining >= 7, input[position] == Opcode.int,
                          readBigEndian32(position + 1) == UInt32(truncatingIfNeeded: count) else { break }
                    position += 5
                    guard let item = try readScalar(), position < input.count, input[position] == Opcode.setItem else {
                        position = start
                        break
                    }
                    position += 1
                    lists[top].items.append(item)
                    count += 1
                }
            } else if kind == Slot.openDict {
                let top = dicts.count - 1
                let run = canonicalEntryRun()
                if run > 8 {
                    dicts[top].keys.reserveCapacity(dicts[top].keys.count + run)
                    dicts[top].values.reserveCapacity(dicts[top].values.count + run)
                }
                while true {
                    let start = position
                    // Scalars are all hashable, so no check is needed for the key.
                    guard let key = try readScalar() else { break }
                    guard let value = try readScalar(), position < input.count, input[position] == Opcode.setItem else {
                        position = start
                        break
                    }
                    position += 1
                    dicts[top].keys.append(key)
                    dicts[top].values.append(value)
                }
            }
        }

        /// Pushes a finished container after checking the depth limit.
        private mutating func pushContainer(_ value: Value, depth: Int32, hashable: Bool, at offset: Int) throws(SerializerError) {
            guard depth <= Serializer.maximumDepth else {
                throw error(.tooDeep, at: offset, "containers nested deeper than \(Serializer.maximumDepth) levels")
            }
            stack.append(Slot(value: value, depth: depth, kind: hashable ? Slot.hashable : Slot.unhashable))
        }

        /// Pops the top entry as a finished value, closing it if it is an open list or dict.
        private mutating func pop(at offset: Int) throws(SerializerError) -> Slot {
            var slot = stack.removeLast()
            switch slot.kind {
            case Slot.openList:
                let list = lists.removeLast()
                guard list.items.count == list.declared else {
                    throw error(.invalidSetItem, at: offset, "list of \(list.declared) slots used with only \(list.items.count) set")
                }
                slot = Slot(value: .list(list.items), depth: list.depth, kind: Slot.unhashable)
            case Slot.openDict:
                let dict = dicts.removeLast()
                slot = Slot(value: .dict(Serializer.makeDictionary(keys: dict.keys, values: dict.values)),
                            depth: dict.depth, kind: Slot.unhashable)
            default:
                break
            }
            return slot
        }

        /// `P`: pops value and key, stores them into the list or dict now on top.
        private mutating func setItem(_ at: Int) throws(SerializerError) {
            guard stack.count >= 3 else {
                throw error(.stackMismatch, at: at, "SETITEM needs 3 stack entries, found \(stack.count)")
            }
            let containerKind = stack[stack.count - 3].kind
            guard containerKind == Slot.openList || containerKind == Slot.openDict else {
                throw error(.invalidSetItem, at: at, "SETITEM target is not a list or dict")
            }
            let value = try pop(at: at)
            let key = try pop(at: at)
            let depth = max(key.depth, value.depth) + 1
            if depth > Serializer.maximumDepth {
                throw error(.tooDeep, at: at, "containers nested deeper than \(Serializer.maximumDepth) levels")
            }
            if containerKind == Slot.openList {
                let top = lists.count - 1
                guard case .int(let index) = key.value, index == lists[top].items.count,
                      index < lists[top].declared else {
                    throw error(.invalidSetItem, at: at, "list index \(key.value) is not the next slot (\(lists[top].items.count) of \(lists[top].declared))")
                }
                lists[top].items.append(value.value)
                if depth > lists[top].depth { lists[top].depth = depth }
            } else {
                guard key.kind == Slot.hashable else {
                    throw error(.unhashable, at: at, "unhashable dict key (a list, dict or set)")
                }
                let top = dicts.count - 1
                dicts[top].keys.append(key.value)
                dicts[top].values.append(value.value)
                if depth > dicts[top].depth { dicts[top].depth = depth }
            }
        }

        /// Pops the top `n` entries, oldest first, for a tuple or set.
        private mutating func popItems(_ n: Int, _ at: Int) throws(SerializerError) -> ([Value], Int32, Bool) {
            guard n <= stack.count else {
                throw error(.stackMismatch, at: at, "count \(n) exceeds the \(stack.count) values on the stack")
            }
            var items = [Value](repeating: .none, count: n)
            var depth: Int32 = 0
            var hashable = true
            var i = n
            while i > 0 {
                i -= 1
                let slot = try pop(at: at)
                if slot.depth > depth { depth = slot.depth }
                if slot.kind != Slot.hashable { hashable = false }
                items[i] = slot.value
            }
            return (items, depth + 1, hashable)
        }
    }
}
