// The public codec entry points beyond `dumps`/`loads`: execnet's `dump`/`load` on a file
// descriptor (the versioned form, as in execnet), and the unversioned form channels carry
// (execnet's `dumps_internal`/`loads_internal`), decodable outside a gateway.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a value in execnet's versioned format to a file descriptor, as Python's `execnet.dump`.
///
/// The bytes are exactly those of ``dumps(_:)``; all of them are written (short writes and
/// `EINTR` are retried). The descriptor is neither flushed nor closed.
///
/// - Parameters:
///   - value: The value to write.
///   - fileDescriptor: An open descriptor to write to (a file, a pipe, a socket).
/// - Throws: ``SerializerError`` from encoding (then nothing is written), or with code
///   ``SerializerError/Code/io`` when a write fails.
public func dump(_ value: Value, to fileDescriptor: Int32) throws(SerializerError) {
    let bytes = try dumps(value)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { writeDescriptor(fileDescriptor, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SerializerError(.io, "write to descriptor \(fileDescriptor) failed: errno \(errno)")
        }
        offset += n
    }
}

private func writeDescriptor(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

/// Reads one value in execnet's versioned format from a file descriptor, as Python's `execnet.load`.
///
/// Reads exactly the value's bytes, up to and including its `Q` (STOP), and nothing after, so
/// values written one after another by ``dump(_:to:)`` are read back one per call. Decoding then
/// follows ``loads(_:)``.
///
/// - Parameter fileDescriptor: An open descriptor to read from.
/// - Returns: The value.
/// - Throws: ``SerializerError``: ``SerializerError/Code/truncated`` when the stream ends before
///   STOP, ``SerializerError/Code/io`` when a read fails, or what ``loads(_:)`` throws.
public func load(from fileDescriptor: Int32) throws(SerializerError) -> Value {
    var reader = ExactReader(fileDescriptor: fileDescriptor)
    var bytes = try reader.read(1)
    while true {
        let opcode = try reader.read(1)
        bytes += opcode
        switch opcode[0] {
        case Serializer.Opcode.stop:
            return try loads(bytes)
        case Serializer.Opcode.none, Serializer.Opcode.true, Serializer.Opcode.false,
             Serializer.Opcode.newDict, Serializer.Opcode.setItem:
            continue
        case Serializer.Opcode.float:
            bytes += try reader.read(8)
        case Serializer.Opcode.complex:
            bytes += try reader.read(16)
        case Serializer.Opcode.py3String, Serializer.Opcode.unicode, Serializer.Opcode.bytes,
             Serializer.Opcode.py2String, Serializer.Opcode.longInt, Serializer.Opcode.longLong:
            let prefix = try reader.read(4)
            bytes += prefix
            let n = Int32(bitPattern: UInt32(prefix[0]) << 24 | UInt32(prefix[1]) << 16 | UInt32(prefix[2]) << 8 | UInt32(prefix[3]))
            guard n >= 0 else {
                throw SerializerError(.negativeCount, offset: bytes.count - 4, "negative length \(n)")
            }
            bytes += try reader.read(Int(n))
        default:
            // Every other opcode carries a 4-byte count or id; an unknown one is left to `loads`.
            guard opcode[0] >= UInt8(ascii: "@"), opcode[0] <= UInt8(ascii: "T") else { return try loads(bytes + [Serializer.Opcode.stop]) }
            bytes += try reader.read(4)
        }
    }
}

/// Reads exact byte counts from a descriptor.
private struct ExactReader {
    let fileDescriptor: Int32

    /// Reads `count` bytes; fewer only when the stream ends, which is an error. Memory grows
    /// with the bytes that arrive, not with a length the stream claims.
    mutating func read(_ count: Int) throws(SerializerError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(count, 1 << 16))
        var chunk = [UInt8](repeating: 0, count: min(count, 1 << 16))
        while out.count < count {
            let want = min(chunk.count, count - out.count)
            let n = chunk.withUnsafeMutableBytes { readDescriptor(fileDescriptor, $0.baseAddress!, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SerializerError(.io, "read from descriptor \(fileDescriptor) failed: errno \(errno)")
            }
            if n == 0 { throw SerializerError(.truncated, "the stream ended before STOP") }
            out += chunk[0..<n]
        }
        return out
    }
}

private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

extension Serializer {
    /// Encodes a value in the unversioned form channels carry (execnet's `dumps_internal`):
    /// the program and `Q`, without the version byte.
    ///
    /// Channel references (``Value/channel(_:)`` and ``Value/channelReference(_:)``) are written
    /// as their ids.
    ///
    /// - Parameter value: The value to encode.
    /// - Returns: The encoded bytes.
    /// - Throws: ``SerializerError``, as ``dumps(_:)``.
    public static func dumpsUnversioned(_ value: Value) throws(SerializerError) -> [UInt8] {
        var buffer: [UInt8] = []
        try encodeInternal(value, into: &buffer)
        return buffer
    }

    /// Decodes the unversioned form channels carry (execnet's `loads_internal`), outside any
    /// gateway.
    ///
    /// Text payloads decode as on a channel (a legacy Python 2 `M` string as latin-1 text). A
    /// channel reference (`B`) decodes as ``Value/channelReference(_:)``, a placeholder holding
    /// the id: there is no gateway whose channel it could name.
    ///
    /// - Parameter bytes: The encoded program, ending with `Q`.
    /// - Returns: The value.
    /// - Throws: ``SerializerError`` for malformed input; never traps.
    public static func loadsUnversioned(_ bytes: [UInt8]) throws(SerializerError) -> Value {
        do {
            return try bytes.withUnsafeBytes { raw in
                var decoder = ProgramDecoder(input: raw, options: .channelDefault, resolveChannel: nil, baseOffset: 0)
                decoder.channelPlaceholders = true
                return try decoder.run()
            }
        } catch let error as SerializerError {
            throw error
        } catch {
            throw SerializerError(.channelOutsideGateway, "\(error)")
        }
    }
}
