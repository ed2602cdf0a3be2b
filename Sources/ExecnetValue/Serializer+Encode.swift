// The encoder: turns a `Value` into the postfix program of format version 2. It walks containers
// with an explicit stack of frames (depth costs heap, not thread stack; bounded by
// `Serializer.maximumDepth`), twice: once to size the output, once to write it in place.

extension Serializer {
    /// Appends the unversioned encoding of a value (its program and `Q`) to a buffer: the form
    /// of channel payloads.
    ///
    /// The output is byte-identical to Python execnet's for every value Python can encode,
    /// except set member order, which follows the set's iteration order. The value is walked
    /// once to validate it and compute the exact size, then written without reallocation.
    ///
    /// - Parameters:
    ///   - value: The value to encode.
    ///   - buffer: The buffer to append to. Unchanged when an error is thrown.
    /// - Throws: ``SerializerError`` with code ``SerializerError/Code/tooLarge``,
    ///   ``SerializerError/Code/tooDeep`` or ``SerializerError/Code/unhashable`` (see ``dumps(_:)``).
    package static func encodeInternal(_ value: Value, into buffer: inout [UInt8]) throws(SerializerError) {
        // The commonest payload by far, a small int, is written directly (`F`, 4 bytes, `Q`).
        if buffer.isEmpty, case .int(let number) = value, let small = Int32(exactly: number) {
            let raw = UInt32(bitPattern: small)
            buffer = [Opcode.int, UInt8(truncatingIfNeeded: raw >> 24), UInt8(truncatingIfNeeded: raw >> 16),
                      UInt8(truncatingIfNeeded: raw >> 8), UInt8(truncatingIfNeeded: raw), Opcode.stop]
            return
        }
        let size = try encodedSize(value)
        if buffer.isEmpty {
            buffer = writeProgram(value, prefix: nil, size: size)
        } else {
            let start = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: size))
            buffer.withUnsafeMutableBytes { raw in
                var sink = WriteSink(base: raw.baseAddress! + start)
                writePass(value, &sink)
                sink.byte(Opcode.stop)
                precondition(sink.offset == size, "encoder size mismatch")
            }
        }
    }

    /// The versioned encoding (`dumps`): version byte, program, `Q`.
    static func encodeVersioned(_ value: Value) throws(SerializerError) -> [UInt8] {
        let size = try encodedSize(value)
        return writeProgram(value, prefix: formatVersion, size: size + 1)
    }

    /// Validates a value and returns the size of its program including the `Q`.
    private static func encodedSize(_ value: Value) throws(SerializerError) -> Int {
        var sizer = SizeSink()
        try walk(value, &sizer)
        return sizer.count + 1
    }

    /// Writes a validated value into a new array of exactly `size` bytes.
    private static func writeProgram(_ value: Value, prefix: UInt8?, size: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var sink = WriteSink(base: UnsafeMutableRawPointer(buffer.baseAddress!))
            if let prefix { sink.byte(prefix) }
            writePass(value, &sink)
            sink.byte(Opcode.stop)
            precondition(sink.offset == size, "encoder size mismatch")
            initialized = size
        }
    }

    /// Runs the write pass, which cannot fail once the size pass has validated the value.
    private static func writePass(_ value: Value, _ sink: inout WriteSink) {
        do {
            try walk(value, &sink)
        } catch {
            preconditionFailure("value changed between the encoder's passes: \(error)")
        }
    }

    /// One container being written: its items and how far the walk has come.
    private struct Frame {
        enum Kind { case list, tuple, set, frozenSet, dict }
        var kind: Kind
        /// Items of a list, tuple or set (a set's members in iteration order); a dict's keys.
        var items: [Value]
        /// A dict's values.
        var values: [Value]
        var index: Int
        /// For dicts: whether the key of entry `index` has been written and the value is next.
        var atValue: Bool
    }

    /// The traversal shared by both passes. Validation (limits, hashability) happens here.
    private static func walk<Sink: EncodeSink>(_ root: Value, _ sink: inout Sink) throws(SerializerError) {
        if try writeScalar(root, &sink) { return }
        var frames: [Frame] = []
        try push(root, &frames, &sink)
        while !frames.isEmpty {
            let top = frames.count - 1
            let index = frames[top].index
            let count = frames[top].items.count
            if index == count {
                let frame = frames.removeLast()
                switch frame.kind {
                case .tuple: sink.int32(Opcode.buildTuple, Int32(truncatingIfNeeded: count))
                case .set: sink.int32(Opcode.set, Int32(truncatingIfNeeded: count))
                case .frozenSet: sink.int32(Opcode.frozenSet, Int32(truncatingIfNeeded: count))
                case .list, .dict: break
                }
                if !frames.isEmpty { finishItem(&frames, &sink) }
                continue
            }
            let child: Value
            switch frames[top].kind {
            case .list:
                // Write the run of scalar items without leaving this loop.
                let items = frames[top].items
                var i = index
                while i < count {
                    sink.int32(Opcode.int, Int32(truncatingIfNeeded: i))
                    if try !writeLeaf(items[i], depth: top + 1, &sink) { break }
                    sink.byte(Opcode.setItem)
                    i += 1
                }
                frames[top].index = i
                if i == count { continue }
                child = items[i]
            case .tuple, .set, .frozenSet:
                let items = frames[top].items
                var i = index
                while i < count, try writeLeaf(items[i], depth: top + 1, &sink) { i += 1 }
                frames[top].index = i
                if i == count { continue }
                child = items[i]
            case .dict:
                let keys = frames[top].items
                let values = frames[top].values
                var i = index
                if frames[top].atValue {
                    if try !writeLeaf(values[i], depth: top + 1, &sink) {
                        child = values[i]
                        break
                    }
                    sink.byte(Opcode.setItem)
                    i += 1
                    frames[top].atValue = false
                }
                // Run of entries whose key and value are both scalars.
                while i < count {
                    let key = keys[i]
                    guard key.isPythonHashable else {
                        throw SerializerError(.unhashable, "unhashable dictionary key: \(kindName(key))")
                    }
                    if try !writeLeaf(key, depth: top + 1, &sink) { break }
                    if try !writeLeaf(values[i], depth: top + 1, &sink) {
                        frames[top].atValue = true
                        break
                    }
                    sink.byte(Opcode.setItem)
                    i += 1
                }
                frames[top].index = i
                if i == count { continue }
                child = frames[top].atValue ? values[i] : keys[i]
            }
            try push(child, &frames, &sink)
        }
    }

    /// Records that the current item of the top frame (a finished container) is complete.
    private static func finishItem<Sink: EncodeSink>(_ frames: inout [Frame], _ sink: inout Sink) {
        let top = frames.count - 1
        switch frames[top].kind {
        case .list:
            sink.byte(Opcode.setItem)
            frames[top].index += 1
        case .dict:
            if frames[top].atValue {
                sink.byte(Opcode.setItem)
                frames[top].index += 1
            }
            frames[top].atValue.toggle()
        case .tuple, .set, .frozenSet:
            frames[top].index += 1
        }
    }

    /// Opens a container: checks limits, writes its prefix and pushes its frame.
    private static func push<Sink: EncodeSink>(_ container: Value, _ frames: inout [Frame], _ sink: inout Sink) throws(SerializerError) {
        guard frames.count < maximumDepth else {
            throw SerializerError(.tooDeep, "containers nested deeper than \(maximumDepth) levels")
        }
        var frame = Frame(kind: .list, items: [], values: [], index: 0, atValue: false)
        switch container {
        case .list(let items):
            try checkCount(items.count, "list")
            sink.int32(Opcode.newList, Int32(items.count))
            frame.items = items
        case .tuple(let items):
            try checkCount(items.count, "tuple")
            frame.kind = .tuple
            frame.items = items
        case .set(let members), .frozenSet(let members):
            try checkCount(members.count, "set")
            if case .set = container { frame.kind = .set } else { frame.kind = .frozenSet }
            frame.items = members.members
            for member in frame.items where !member.isPythonHashable {
                throw SerializerError(.unhashable, "unhashable set member: \(kindName(member))")
            }
            if Sink.self == SizeSink.self, !members.isPythonDistinct { try checkPythonDistinct(members.members, "set") }
        case .dict(let entries):
            if Sink.self == SizeSink.self { try checkPythonDistinct(entries.keys, "dict") }
            sink.byte(Opcode.newDict)
            frame.kind = .dict
            frame.items = entries.keys
            frame.values = entries.values
        default:
            preconditionFailure("push called with a scalar")
        }
        frames.append(frame)
    }

    /// Writes a scalar, or a container of scalars nested `depth` deep, without a frame; returns
    /// `false` (writing nothing) for containers holding containers.
    @inline(__always)
    private static func writeLeaf<Sink: EncodeSink>(_ value: Value, depth: Int, _ sink: inout Sink) throws(SerializerError) -> Bool {
        if try writeScalar(value, &sink) { return true }
        guard depth < maximumDepth else { return false }
        return try writeFlatContainer(value, &sink)
    }

    private static func isScalar(_ value: Value) -> Bool {
        switch value {
        case .list, .tuple, .dict, .set, .frozenSet: false
        default: true
        }
    }

    /// Writes a container whose items (or keys and values) are all scalars; `false` otherwise.
    private static func writeFlatContainer<Sink: EncodeSink>(_ value: Value, _ sink: inout Sink) throws(SerializerError) -> Bool {
        switch value {
        case .list(let items):
            guard items.allSatisfy(isScalar) else { return false }
            try checkCount(items.count, "list")
            sink.int32(Opcode.newList, Int32(items.count))
            for i in items.indices {
                sink.int32(Opcode.int, Int32(truncatingIfNeeded: i))
                _ = try writeScalar(items[i], &sink)
                sink.byte(Opcode.setItem)
            }
        case .tuple(let items):
            guard items.allSatisfy(isScalar) else { return false }
            try checkCount(items.count, "tuple")
            for item in items { _ = try writeScalar(item, &sink) }
            sink.int32(Opcode.buildTuple, Int32(items.count))
        case .set(let members), .frozenSet(let members):
            guard members.allSatisfy(isScalar) else { return false }
            try checkCount(members.count, "set")
            if Sink.self == SizeSink.self, !members.isPythonDistinct { try checkPythonDistinct(members.members, "set") }
            for member in members { _ = try writeScalar(member, &sink) }
            if case .set = value {
                sink.int32(Opcode.set, Int32(members.count))
            } else {
                sink.int32(Opcode.frozenSet, Int32(members.count))
            }
        case .dict(let entries):
            let keys = entries.keys
            let values = entries.values
            guard keys.allSatisfy(isScalar), values.allSatisfy(isScalar) else { return false }
            if Sink.self == SizeSink.self { try checkPythonDistinct(keys, "dict") }
            sink.byte(Opcode.newDict)
            for i in keys.indices {
                _ = try writeScalar(keys[i], &sink)
                _ = try writeScalar(values[i], &sink)
                sink.byte(Opcode.setItem)
            }
        default:
            return false
        }
        return true
    }

    private static func checkCount(_ count: Int, _ what: String) throws(SerializerError) {
        guard count <= maximumCount else {
            throw SerializerError(.tooLarge, "\(what) of \(count) items exceeds the format's limit of 2147483647")
        }
    }

    /// Writes a non-container value; returns `false` (writing nothing) for containers.
    @inline(__always)
    private static func writeScalar<Sink: EncodeSink>(_ value: Value, _ sink: inout Sink) throws(SerializerError) -> Bool {
        switch value {
        case .int(let i):
            if let small = Int32(exactly: i) {
                sink.int32(Opcode.int, small)
            } else {
                sink.decimal(i)
            }
        case .string(let s):
            let count = s.utf8.count
            guard count <= maximumCount else {
                throw SerializerError(.tooLarge, "string of \(count) UTF-8 bytes exceeds the format's limit of 2147483647")
            }
            sink.string(s, utf8Count: count)
        case .none: sink.byte(Opcode.none)
        case .bool(let b): sink.byte(b ? Opcode.true : Opcode.false)
        case .float(let d): sink.uint64(Opcode.float, d.bitPattern)
        case .bigInt(let b):
            if let small = b.int64Value {
                if let tiny = Int32(exactly: small) { sink.int32(Opcode.int, tiny) } else { sink.decimal(small) }
            } else {
                guard b.decimalDigitCount <= BigInteger.maximumDecimalDigits else {
                    throw SerializerError(.tooLarge, "integer of \(b.decimalDigitCount) digits exceeds the limit of \(BigInteger.maximumDecimalDigits)")
                }
                sink.decimal(b)
            }
        case .bytes(let b):
            guard b.count <= maximumCount else {
                throw SerializerError(.tooLarge, "byte string of \(b.count) bytes exceeds the format's limit of 2147483647")
            }
            b.withUnsafeBytes { sink.blob(Opcode.bytes, $0) }
        case .complex(let c):
            sink.uint64(Opcode.complex, c.real.bitPattern)
            sink.raw64(c.imaginary.bitPattern)
        case .channel(let c):
            sink.int32(Opcode.channel, c.id)
        case .channelReference(let id):
            sink.int32(Opcode.channel, id)
        case .list, .tuple, .dict, .set, .frozenSet:
            return false
        }
        return true
    }

    /// A short name of a value's kind for error messages.
    static func kindName(_ value: Value) -> String {
        switch value {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .complex: "complex"
        case .bytes: "bytes"
        case .string: "str"
        case .list: "list"
        case .tuple: "tuple"
        case .dict: "dict"
        case .set: "set"
        case .frozenSet: "frozenset"
        case .channel, .channelReference: "channel"
        }
    }
}
