// The public codec entry points of issue 11's missing API: `dump`/`load` on file descriptors
// (execnet's versioned dump/load), and the unversioned channel form with channel references
// decoded as placeholders outside a gateway.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SerializerStreamTests {
    /// A pipe's two ends.
    static func pipeEnds() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test("dump writes the bytes of dumps, and load reads values back one at a time")
    func dumpAndLoadThroughAPipe() throws {
        let (r, w) = try Self.pipeEnds()
        defer { close(r) }
        let values: [Value] = [
            [1, "two", .float(3.5), nil, .bytes([0, 255])],
            .dict(["k": .tuple([1, .frozenSet([2, 3])]), "big": .bigInt(try BigInteger(parsing: "123456789012345678901234567890"))]),
            .complex(Complex(real: 1, imaginary: -2)),
            "last",
        ]
        for value in values { try dump(value, to: w) }
        close(w)
        for value in values { #expect(try load(from: r) == value) }
        // Nothing is left over, and the end of the stream is a typed error.
        #expect(throws: SerializerError(.truncated, "")) { try load(from: r) }
    }

    @Test("load reads exactly the bytes Python's execnet.dump wrote")
    func loadPythonBytes() throws {
        let (r, w) = try Self.pipeEnds()
        defer { close(r) }
        // execnet.dumps({float('nan'): 1, float('nan'): 2}) then execnet.dumps([1, 'a'])
        let first = SerializerPythonEqualityTests.hex("024a447ff8000000000000460000000150447ff800000000000046000000025051")
        let second = try dumps([1, "a"])
        #expect(write(w, first + second, first.count + second.count) == first.count + second.count)
        close(w)
        #expect(try load(from: r).dictValue?.count == 2)
        #expect(try load(from: r) == [1, "a"])
    }

    @Test("load of a stream cut short, or with a hostile length, fails with a typed error")
    func loadTruncated() throws {
        let inputs: [[UInt8]] = [Array(try dumps(["key": "value"]).dropLast(3)), [0x02, UInt8(ascii: "N"), 0x7F, 0xFF, 0xFF, 0xFF, 0x61], [0x03, 0x51]]
        for bytes in inputs {
            let (r, w) = try Self.pipeEnds()
            _ = bytes.withUnsafeBytes { write(w, $0.baseAddress, $0.count) }
            close(w)
            #expect(throws: SerializerError.self) { try load(from: r) }
            close(r)
        }
    }

    @Test("dump to a closed descriptor is an io error")
    func dumpToBadDescriptor() {
        #expect(throws: SerializerError(.io, "")) { try dump([1, 2], to: -1) }
    }

    @Test("the unversioned form is public and matches the channel payload codec")
    func unversionedForm() throws {
        let value: Value = ["a": [1, 2], "b": .tuple([.float(3.5), nil])]
        let bytes = try Serializer.dumpsUnversioned(value)
        var internalBytes: [UInt8] = []
        try Serializer.encodeInternal(value, into: &internalBytes)
        #expect(bytes == internalBytes)
        #expect(Array(try dumps(value).dropFirst()) == bytes)
        #expect(try Serializer.loadsUnversioned(bytes) == value)
        #expect(throws: SerializerError(.truncated, "")) { try Serializer.loadsUnversioned(Array(bytes.dropLast())) }
    }

    @Test("channel references decode outside a gateway as placeholders carrying the id, and encode back")
    func channelPlaceholders() throws {
        // execnet's dumps_internal of a channel with id 5 inside a list: K, F 0, B 5, P, Q
        let bytes: [UInt8] = [0x4B, 0, 0, 0, 1, 0x46, 0, 0, 0, 0, 0x42, 0, 0, 0, 5, 0x50, 0x51]
        let value = try Serializer.loadsUnversioned(bytes)
        #expect(value == [.channelReference(5)])
        #expect(value.description == "[<Channel id=5>]")
        #expect(try Serializer.dumpsUnversioned(value) == bytes)
        // Plain loads and the gateway-less internal decoder still refuse them.
        #expect(throws: SerializerError(.channelOutsideGateway, "")) {
            try Serializer.decodeInternal(bytes, resolveChannel: nil)
        }
        // As set members and dict keys they are hashable, by id.
        let set = try Serializer.loadsUnversioned([0x42, 0, 0, 0, 5, 0x42, 0, 0, 0, 7, 0x42, 0, 0, 0, 5, 0x4F, 0, 0, 0, 3, 0x51])
        #expect(set == .set([.channelReference(5), .channelReference(7)]))
    }
}
