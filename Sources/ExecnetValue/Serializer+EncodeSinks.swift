// The two destinations of the encoder's walk: `SizeSink` adds up the bytes an instruction
// takes, `WriteSink` stores them through a raw pointer into a buffer sized by the first pass.
// Both implement the same instruction set, so one generic walk serves both passes.

/// Where the encoder's walk sends its output: a byte counter or a raw writer.
protocol EncodeSink {
    mutating func byte(_ b: UInt8)
    /// Opcode + big-endian i4.
    mutating func int32(_ opcode: UInt8, _ value: Int32)
    /// Opcode + big-endian 8 bytes.
    mutating func uint64(_ opcode: UInt8, _ value: UInt64)
    /// Big-endian 8 bytes, no opcode.
    mutating func raw64(_ value: UInt64)
    /// Opcode + i4 length + bytes.
    mutating func blob(_ opcode: UInt8, _ bytes: UnsafeRawBufferPointer)
    /// `N` + i4 length + UTF-8 bytes.
    mutating func string(_ s: String, utf8Count: Int)
    /// `H` + i4 length + decimal digits.
    mutating func decimal(_ value: Int64)
    mutating func decimal(_ value: BigInteger)
}

struct SizeSink: EncodeSink {
    var count = 0

    mutating func byte(_ b: UInt8) { count += 1 }
    mutating func int32(_ opcode: UInt8, _ value: Int32) { count += 5 }
    mutating func uint64(_ opcode: UInt8, _ value: UInt64) { count += 9 }
    mutating func raw64(_ value: UInt64) { count += 8 }
    mutating func blob(_ opcode: UInt8, _ bytes: UnsafeRawBufferPointer) { count += 5 + bytes.count }
    mutating func string(_ s: String, utf8Count: Int) { count += 5 + utf8Count }
    mutating func decimal(_ value: Int64) { count += 5 + decimalLength(value) }
    mutating func decimal(_ value: BigInteger) { count += 5 + value.decimalDigitCount + (value.isNegative ? 1 : 0) }
}

/// The number of characters of an Int64 in decimal, sign included.
func decimalLength(_ value: Int64) -> Int {
    var magnitude = value.magnitude
    var digits = 1
    while magnitude >= 10 { magnitude /= 10; digits += 1 }
    return digits + (value < 0 ? 1 : 0)
}

struct WriteSink: EncodeSink {
    let base: UnsafeMutableRawPointer
    var offset = 0

    init(base: UnsafeMutableRawPointer) {
        self.base = base
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        base.storeBytes(of: b, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    @inline(__always)
    mutating func int32(_ opcode: UInt8, _ value: Int32) {
        base.storeBytes(of: opcode, toByteOffset: offset, as: UInt8.self)
        base.storeBytes(of: UInt32(bitPattern: value).bigEndian, toByteOffset: offset + 1, as: UInt32.self)
        offset += 5
    }

    @inline(__always)
    mutating func uint64(_ opcode: UInt8, _ value: UInt64) {
        base.storeBytes(of: opcode, toByteOffset: offset, as: UInt8.self)
        base.storeBytes(of: value.bigEndian, toByteOffset: offset + 1, as: UInt64.self)
        offset += 9
    }

    @inline(__always)
    mutating func raw64(_ value: UInt64) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }

    @inline(__always)
    mutating func blob(_ opcode: UInt8, _ bytes: UnsafeRawBufferPointer) {
        int32(opcode, Int32(truncatingIfNeeded: bytes.count))
        if let source = bytes.baseAddress {
            (base + offset).copyMemory(from: source, byteCount: bytes.count)
        }
        offset += bytes.count
    }

    @inline(__always)
    mutating func string(_ s: String, utf8Count: Int) {
        var s = s
        s.withUTF8 { blob(Serializer.Opcode.py3String, UnsafeRawBufferPointer($0)) }
    }

    mutating func decimal(_ value: Int64) {
        let length = decimalLength(value)
        int32(Serializer.Opcode.longInt, Int32(length))
        var magnitude = value.magnitude
        var i = offset + length
        repeat {
            i -= 1
            base.storeBytes(of: UInt8(ascii: "0") + UInt8(magnitude % 10), toByteOffset: i, as: UInt8.self)
            magnitude /= 10
        } while magnitude != 0
        if value < 0 { base.storeBytes(of: UInt8(ascii: "-"), toByteOffset: offset, as: UInt8.self) }
        offset += length
    }

    mutating func decimal(_ value: BigInteger) {
        var digits: [UInt8] = []
        value.appendDecimal(to: &digits)
        digits.withUnsafeBytes { blob(Serializer.Opcode.longInt, $0) }
    }
}
