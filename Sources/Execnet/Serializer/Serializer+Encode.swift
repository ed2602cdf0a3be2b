// The encoder: turns a `Value` into the postfix program of format version 2 (without the
// version byte; `dumps` adds it). It walks containers with an explicit stack of frames, so
// nesting depth costs heap, not thread stack, and it is bounded by `Serializer.maximumDepth`.

import OrderedCollections

extension Serializer {
    /// Appends the unversioned encoding of a value (its program and `Q`) to a buffer: the form
    /// of channel payloads.
    ///
    /// The output is byte-identical to Python execnet's for every value Python can encode,
    /// except set member order, which follows the set's iteration order.
    ///
    /// - Parameters:
    ///   - value: The value to encode.
    ///   - buffer: The buffer to append to. On error it may hold a partial encoding.
    /// - Throws: ``SerializerError`` with code ``SerializerError/Code/tooLarge``,
    ///   ``SerializerError/Code/tooDeep`` or ``SerializerError/Code/unhashable`` (see ``dumps(_:)``).
    package static func encodeInternal(_ value: Value, into buffer: inout [UInt8]) throws(SerializerError) {
        var encoder = Encoder(buffer: buffer)
        buffer = []  // hand the storage over, so appends don't copy it
        defer { buffer = encoder.buffer }
        try encoder.encode(value)
        encoder.buffer.append(Opcode.stop)
    }

    /// One container being written: its items and how far the walk has come.
    private struct Frame {
        enum Kind { case list, tuple, set, frozenSet, dict }
        var kind: Kind
        /// Items of a list, tuple or set (a set's members in iteration order).
        var items: [Value]
        /// Entries of a dict.
        var dict: OrderedDictionary<Value, Value>
        var index: Int
        /// For dicts: whether the key of entry `index` has been written and the value is next.
        var atValue: Bool
        var count: Int { kind == .dict ? dict.count : items.count }
    }

    private struct Encoder {
        var buffer: [UInt8]
        var frames: [Frame] = []

        mutating func encode(_ root: Value) throws(SerializerError) {
            if try writeScalar(root) { return }
            try push(root)
            while !frames.isEmpty {
                let top = frames.count - 1
                let index = frames[top].index
                if index == frames[top].count {
                    let frame = frames.removeLast()
                    switch frame.kind {
                    case .tuple: writeCount(Opcode.buildTuple, frame.items.count)
                    case .set: writeCount(Opcode.set, frame.items.count)
                    case .frozenSet: writeCount(Opcode.frozenSet, frame.items.count)
                    case .list, .dict: break
                    }
                    if !frames.isEmpty { finishItem() }
                    continue
                }
                let child: Value
                switch frames[top].kind {
                case .list:
                    // Fast path: write a run of scalar items without leaving the loop.
                    var i = index
                    let items = frames[top].items
                    while i < items.count {
                        writeInt32(Opcode.int, Int32(truncatingIfNeeded: i))
                        if try !writeScalar(items[i]) { break }
                        buffer.append(Opcode.setItem)
                        i += 1
                    }
                    frames[top].index = i
                    if i == items.count { continue }
                    child = items[i]
                case .tuple, .set, .frozenSet:
                    var i = index
                    let items = frames[top].items
                    while i < items.count, try writeScalar(items[i]) { i += 1 }
                    frames[top].index = i
                    if i == items.count { continue }
                    child = items[i]
                case .dict:
                    if frames[top].atValue {
                        child = frames[top].dict.values.elements[index]
                    } else {
                        child = frames[top].dict.keys[index]
                        guard child.isPythonHashable else {
                            throw SerializerError(.unhashable, "unhashable dictionary key: \(kindName(child))")
                        }
                    }
                    if try writeScalar(child) {
                        finishItem()
                        continue
                    }
                }
                try push(child)
            }
        }

        /// Records that the current item of the top frame is complete.
        private mutating func finishItem() {
            let top = frames.count - 1
            switch frames[top].kind {
            case .list:
                buffer.append(Opcode.setItem)
                frames[top].index += 1
            case .dict:
                if frames[top].atValue {
                    buffer.append(Opcode.setItem)
                    frames[top].index += 1
                }
                frames[top].atValue.toggle()
            case .tuple, .set, .frozenSet:
                frames[top].index += 1
            }
        }

        /// Opens a container: checks limits, writes its prefix and pushes its frame.
        private mutating func push(_ container: Value) throws(SerializerError) {
            guard frames.count < Serializer.maximumDepth else {
                throw SerializerError(.tooDeep, "containers nested deeper than \(Serializer.maximumDepth) levels")
            }
            var frame = Frame(kind: .list, items: [], dict: [:], index: 0, atValue: false)
            switch container {
            case .list(let items):
                try checkCount(items.count, "list")
                writeInt32(Opcode.newList, Int32(items.count))
                frame.items = items
            case .tuple(let items):
                try checkCount(items.count, "tuple")
                frame.kind = .tuple
                frame.items = items
            case .set(let members), .frozenSet(let members):
                try checkCount(members.count, "set")
                if case .set = container { frame.kind = .set } else { frame.kind = .frozenSet }
                frame.items = Array(members)
                for member in frame.items where !member.isPythonHashable {
                    throw SerializerError(.unhashable, "unhashable set member: \(kindName(member))")
                }
            case .dict(let d):
                buffer.append(Opcode.newDict)
                frame.kind = .dict
                frame.dict = d
            default:
                preconditionFailure("push called with a scalar")
            }
            frames.append(frame)
        }

        private func checkCount(_ count: Int, _ what: String) throws(SerializerError) {
            guard count <= Serializer.maximumCount else {
                throw SerializerError(.tooLarge, "\(what) of \(count) items exceeds the format's limit of 2147483647")
            }
        }

        /// Writes a non-container value; returns `false` (writing nothing) for containers.
        @inline(__always)
        private mutating func writeScalar(_ value: Value) throws(SerializerError) -> Bool {
            switch value {
            case .int(let i):
                if let small = Int32(exactly: i) {
                    writeInt32(Opcode.int, small)
                } else {
                    writeLongInt(BigInteger(i))
                }
            case .none: buffer.append(Opcode.none)
            case .bool(let b): buffer.append(b ? Opcode.true : Opcode.false)
            case .string(var s):
                let count = s.utf8.count
                guard count <= Serializer.maximumCount else {
                    throw SerializerError(.tooLarge, "string of \(count) UTF-8 bytes exceeds the format's limit of 2147483647")
                }
                writeInt32(Opcode.py3String, Int32(count))
                s.withUTF8 { buffer.append(contentsOf: $0) }
            case .float(let d):
                writeUInt64(Opcode.float, d.bitPattern)
            case .bigInt(let b):
                if let small = b.int64Value.flatMap({ Int32(exactly: $0) }) {
                    writeInt32(Opcode.int, small)
                } else {
                    guard b.decimalDigitCount <= BigInteger.maximumDecimalDigits else {
                        throw SerializerError(.tooLarge, "integer of \(b.decimalDigitCount) digits exceeds the limit of \(BigInteger.maximumDecimalDigits)")
                    }
                    writeLongInt(b)
                }
            case .bytes(let b):
                guard b.count <= Serializer.maximumCount else {
                    throw SerializerError(.tooLarge, "byte string of \(b.count) bytes exceeds the format's limit of 2147483647")
                }
                writeInt32(Opcode.bytes, Int32(b.count))
                buffer.append(contentsOf: b)
            case .complex(let c):
                writeUInt64(Opcode.complex, c.real.bitPattern)
                appendUInt64(c.imaginary.bitPattern)
            case .channel(let c):
                writeInt32(Opcode.channel, c.id)
            case .list, .tuple, .dict, .set, .frozenSet:
                return false
            }
            return true
        }

        private mutating func writeLongInt(_ b: BigInteger) {
            var digits: [UInt8] = []
            b.appendDecimal(to: &digits)
            writeInt32(Opcode.longInt, Int32(digits.count))
            buffer.append(contentsOf: digits)
        }

        @inline(__always)
        private mutating func writeCount(_ opcode: UInt8, _ count: Int) {
            writeInt32(opcode, Int32(truncatingIfNeeded: count))
        }

        @inline(__always)
        private mutating func writeInt32(_ opcode: UInt8, _ value: Int32) {
            let v = UInt32(bitPattern: value)
            buffer.append(opcode)
            buffer.append(UInt8(truncatingIfNeeded: v >> 24))
            buffer.append(UInt8(truncatingIfNeeded: v >> 16))
            buffer.append(UInt8(truncatingIfNeeded: v >> 8))
            buffer.append(UInt8(truncatingIfNeeded: v))
        }

        @inline(__always)
        private mutating func writeUInt64(_ opcode: UInt8, _ value: UInt64) {
            buffer.append(opcode)
            appendUInt64(value)
        }

        @inline(__always)
        private mutating func appendUInt64(_ value: UInt64) {
            withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
        }
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
        case .channel: "channel"
        }
    }
}
