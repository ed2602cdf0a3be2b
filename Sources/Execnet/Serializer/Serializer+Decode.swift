// The decoder: runs the postfix program of format version 2 on an explicit stack, without
// recursion. Every length and count is checked against the remaining input before anything
// is allocated, so hostile input fails with a `SerializerError` and never traps or balloons.

import OrderedCollections

extension Serializer {
    /// Decodes an unversioned program (a channel payload: program + `Q`, no version byte).
    ///
    /// Beyond Python's checks, this decoder rejects what Python lets through by accident: a
    /// count larger than the stack, negative counts, list items set out of order or left unset.
    /// It accepts bytes after the `Q` (ignored, as in Python), duplicate dict keys (last wins),
    /// and `H` text in any form Python's `int()` reads.
    ///
    /// - Parameters:
    ///   - bytes: The encoded program.
    ///   - options: How `M` and `N` payloads decode (Python's `strconfig`).
    ///   - resolveChannel: Looks up (or creates) the channel for a `B` id; `nil` makes `B` an error.
    ///   - baseOffset: Added to error offsets (1 when the caller stripped a version byte).
    /// - Returns: The decoded value.
    /// - Throws: ``SerializerError`` for malformed input, or whatever `resolveChannel` throws.
    package static func decodeInternal(
        _ bytes: UnsafeRawBufferPointer,
        options: StringOptions = .channelDefault,
        resolveChannel: ((Int32) throws -> Channel)?,
        baseOffset: Int = 0
    ) throws -> Value {
        var decoder = Decoder(input: bytes, options: options, resolveChannel: resolveChannel, baseOffset: baseOffset)
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
    private struct Slot {
        static let hashable: UInt8 = 0
        static let unhashable: UInt8 = 1
        static let openList: UInt8 = 2
        static let openDict: UInt8 = 3

        var value: Value
        /// Container nesting of the value: 0 for scalars, 1 + the deepest item for containers.
        var depth: Int32
        var kind: UInt8
    }

    private struct OpenList {
        var items: [Value]
        var declared: Int
        var depth: Int32
    }

    private struct OpenDict {
        var entries: OrderedDictionary<Value, Value>
        var depth: Int32
    }

    private struct Decoder {
        let input: UnsafeRawBufferPointer
        let options: StringOptions
        let resolveChannel: ((Int32) throws -> Channel)?
        let baseOffset: Int
        var position = 0
        var stack: [Slot] = []
        var lists: [OpenList] = []
        var dicts: [OpenDict] = []

        init(input: UnsafeRawBufferPointer, options: StringOptions, resolveChannel: ((Int32) throws -> Channel)?, baseOffset: Int) {
            self.input = input
            self.options = options
            self.resolveChannel = resolveChannel
            self.baseOffset = baseOffset
        }

        private func error(_ code: SerializerError.Code, at offset: Int, _ message: String) -> SerializerError {
            SerializerError(code, offset: baseOffset + offset, message)
        }

        @inline(__always)
        private var remaining: Int { input.count - position }

        @inline(__always)
        private mutating func readInt32(_ opcodeOffset: Int) throws(SerializerError) -> Int32 {
            guard remaining >= 4 else {
                throw error(.truncated, at: opcodeOffset, "input ends inside a 4-byte payload")
            }
            let raw = input.loadUnaligned(fromByteOffset: position, as: UInt32.self)
            position += 4
            return Int32(bitPattern: UInt32(bigEndian: raw))
        }

        @inline(__always)
        private mutating func readUInt64(_ opcodeOffset: Int) throws(SerializerError) -> UInt64 {
            guard remaining >= 8 else {
                throw error(.truncated, at: opcodeOffset, "input ends inside an 8-byte payload")
            }
            let raw = input.loadUnaligned(fromByteOffset: position, as: UInt64.self)
            position += 8
            return UInt64(bigEndian: raw)
        }

        /// Reads an i4 count and checks it is not negative.
        @inline(__always)
        private mutating func readCount(_ opcodeOffset: Int) throws(SerializerError) -> Int {
            let n = try readInt32(opcodeOffset)
            guard n >= 0 else {
                throw error(.negativeCount, at: opcodeOffset, "negative count \(n)")
            }
            return Int(n)
        }

        /// Reads a blob (i4 length + bytes) and returns its bytes, checked against the input.
        @inline(__always)
        private mutating func readBlob(_ opcodeOffset: Int) throws(SerializerError) -> UnsafeRawBufferPointer {
            let n = try readCount(opcodeOffset)
            guard n <= remaining else {
                throw error(.truncated, at: opcodeOffset, "blob length \(n) exceeds the \(remaining) remaining bytes")
            }
            let blob = UnsafeRawBufferPointer(rebasing: input[position..<(position + n)])
            position += n
            return blob
        }

        @inline(__always)
        private mutating func push(_ value: Value, hashable: Bool = true) {
            stack.append(Slot(value: value, depth: 0, kind: hashable ? Slot.hashable : Slot.unhashable))
        }

        /// Pushes a finished container after checking the depth limit.
        private mutating func pushContainer(_ value: Value, depth: Int32, hashable: Bool, at offset: Int) throws(SerializerError) {
            guard depth <= Serializer.maximumDepth else {
                throw error(.tooDeep, at: offset, "containers nested deeper than \(Serializer.maximumDepth) levels")
            }
            stack.append(Slot(value: value, depth: depth, kind: hashable ? Slot.hashable : Slot.unhashable))
        }

        /// Pops the top entry as a finished value, closing it if it is an open list or dict.
        @inline(__always)
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
                slot = Slot(value: .dict(dict.entries), depth: dict.depth, kind: Slot.unhashable)
            default:
                break
            }
            return slot
        }

        mutating func run() throws -> Value {
            while true {
                let at = position
                guard position < input.count else {
                    throw error(.truncated, at: at, "input ends before STOP")
                }
                let opcode = input[position]
                position += 1
                switch opcode {
                case Opcode.int, Opcode.long:
                    push(.int(Int64(try readInt32(at))))
                case Opcode.setItem:
                    try setItem(at)
                case Opcode.py3String, Opcode.unicode:
                    let blob = try readBlob(at)
                    if opcode == Opcode.py3String && options.py3strAsPy2str {
                        push(.bytes(Array(blob)))
                    } else {
                        push(.string(try utf8String(blob, at)))
                    }
                case Opcode.none: push(.none)
                case Opcode.true: push(.bool(true))
                case Opcode.false: push(.bool(false))
                case Opcode.float: push(.float(Double(bitPattern: try readUInt64(at))))
                case Opcode.complex:
                    let real = Double(bitPattern: try readUInt64(at))
                    let imaginary = Double(bitPattern: try readUInt64(at))
                    push(.complex(Complex(real: real, imaginary: imaginary)))
                case Opcode.bytes:
                    push(.bytes(Array(try readBlob(at))))
                case Opcode.py2String:
                    let blob = try readBlob(at)
                    push(options.py2strAsPy3str ? .string(latin1String(blob)) : .bytes(Array(blob)))
                case Opcode.longInt, Opcode.longLong:
                    let blob = try readBlob(at)
                    let scanned = blob.withMemoryRebound(to: UInt8.self) { text in
                        DecimalText.scan(text).map { $0.value(in: text) }
                    }
                    switch scanned {
                    case .success(let value): push(value)
                    case .failure(let e): throw error(e.code, at: at, e.message)
                    }
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
                case Opcode.newDict:
                    dicts.append(OpenDict(entries: [:], depth: 1))
                    stack.append(Slot(value: .none, depth: 0, kind: Slot.openDict))
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
                    let members = Set(items)
                    try pushContainer(opcode == Opcode.set ? .set(members) : .frozenSet(members),
                                      depth: depth, hashable: opcode == Opcode.frozenSet, at: at)
                case Opcode.channel:
                    let id = try readInt32(at)
                    guard let resolveChannel else {
                        throw error(.channelOutsideGateway, at: at, "channel reference \(id) outside a gateway")
                    }
                    push(.channel(try resolveChannel(id)))
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

        /// `P`: pops value and key, stores them into the list or dict now on top.
        @inline(__always)
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
                dicts[top].entries[key.value] = value.value
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

        private func utf8String(_ blob: UnsafeRawBufferPointer, _ at: Int) throws(SerializerError) -> String {
            let text = blob.withMemoryRebound(to: UInt8.self) { String(validating: $0, as: UTF8.self) }
            guard let text else {
                throw error(.invalidUTF8, at: at, "text payload is not valid UTF-8")
            }
            return text
        }

        private func latin1String(_ blob: UnsafeRawBufferPointer) -> String {
            if !blob.contains(where: { $0 >= 0x80 }) {
                return String(decoding: blob, as: UTF8.self)
            }
            var scalars = String.UnicodeScalarView()
            scalars.append(contentsOf: blob.lazy.map { Unicode.Scalar($0) })
            return String(scalars)
        }
    }
}
