// Checks the codec against the vectors Python execnet 2.1.2 generated: each vector's value is
// built from its Python repr (or its generator) without the decoder, then encoded and compared
// with the recorded bytes, and the bytes are decoded and compared with the value.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

extension SerializerVector: CustomTestStringConvertible {
    var testDescription: String { name }
}

extension InvalidVector: CustomTestStringConvertible {
    var testDescription: String { name }
}

extension LenientVector: CustomTestStringConvertible {
    var testDescription: String { name }
}

/// Hands out one channel object per id, like a gateway's registry.
final class ChannelRegistry {
    private var channels: [Int32: Channel] = [:]

    func channel(_ id: Int32) -> Channel {
        if let existing = channels[id] { return existing }
        let created = Channel(id: id)
        channels[id] = created
        return created
    }
}

@Suite struct SerializerVectorTests {
    static let vectors = Fixtures.load([SerializerVector].self, "serializer-vectors.json")
    static let invalid = Fixtures.load([InvalidVector].self, "serializer-invalid.json")
    static let lenient = Fixtures.load([LenientVector].self, "serializer-lenient.json")

    /// The value a vector stands for, built from its repr or its generator.
    static func expectedValue(_ vector: SerializerVector, channels: ChannelRegistry) throws -> Value {
        if let repr = vector.python_repr {
            return try PythonLiteral.parse(repr, channel: channels.channel)
        }
        switch vector.name {
        case "bytes_300kib_random":
            // random.Random(20240501).randbytes(307200)
            var random = PythonRandom(seed: 20_240_501)
            return .bytes(random.randbytes(307_200))
        case "str_100k_chars":
            // ''.join(random.Random(424242).choice(ALPHABET) for _ in range(100000))
            let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789 \n\u{E9}\u{DF}\u{2713}\u{65E5}\u{672C}\u{1F600}".unicodeScalars)
            var random = PythonRandom(seed: 424_242)
            var text = String.UnicodeScalarView()
            for _ in 0..<100_000 { text.append(random.choice(alphabet)) }
            return .string(String(text))
        default:
            Issue.record("vector \(vector.name) has neither a repr nor a known generator")
            return .none
        }
    }

    /// Decodes versioned bytes; channel references resolve through `channels`.
    static func decode(_ bytes: [UInt8], channels: ChannelRegistry) throws -> Value {
        guard bytes.first == Serializer.formatVersion else { return try loads(bytes) }
        return try Serializer.decodeInternal(Array(bytes.dropFirst()), options: .loadsDefault, resolveChannel: channels.channel)
    }

    @Test("the fixture files hold the expected number of vectors")
    func fixtureCounts() {
        #expect(Self.vectors.count == 73)
        #expect(Self.invalid.count == 45)
        #expect(Self.lenient.count == 18)
    }

    @Test("dumps of each vector's value gives the recorded bytes", arguments: vectors)
    func encodesVector(_ vector: SerializerVector) throws {
        let channels = ChannelRegistry()
        let value = try Self.expectedValue(vector, channels: channels)
        let encoded = try dumps(value)
        if vector.compare == "exact" {
            #expect(Hex.encode(encoded) == vector.expectedHex, "vector \(vector.name)")
        } else {
            // Set member order is free: same length, and it decodes to the same value.
            #expect(encoded.count == Hex.decode(vector.expectedHex).count, "vector \(vector.name)")
            #expect(try Self.decode(encoded, channels: channels) == value, "vector \(vector.name)")
        }
    }

    @Test("decoding each vector's recorded bytes gives its value", arguments: vectors)
    func decodesVector(_ vector: SerializerVector) throws {
        let channels = ChannelRegistry()
        let value = try Self.expectedValue(vector, channels: channels)
        let decoded = try Self.decode(Hex.decode(vector.expectedHex), channels: channels)
        #expect(decoded == value, "vector \(vector.name)")
    }

    @Test("the unversioned form is the versioned form without its first byte", arguments: vectors)
    func internalForm(_ vector: SerializerVector) throws {
        let channels = ChannelRegistry()
        let value = try Self.expectedValue(vector, channels: channels)
        var internalBytes: [UInt8] = []
        try Serializer.encodeInternal(value, into: &internalBytes)
        #expect(internalBytes == Array(try dumps(value).dropFirst()), "vector \(vector.name)")
        let decoded = try Serializer.decodeInternal(internalBytes, resolveChannel: channels.channel)
        #expect(decoded == value, "vector \(vector.name)")
    }

    @Test("the description of each vector's value is Python's repr", arguments: vectors.filter {
        $0.python_repr != nil && $0.compare == "exact"
    })
    func descriptionMatchesRepr(_ vector: SerializerVector) throws {
        let value = try Self.expectedValue(vector, channels: ChannelRegistry())
        #expect(value.description == vector.python_repr, "vector \(vector.name)")
    }

    @Test("channel references cannot be decoded by plain loads", arguments: vectors.filter { $0.kind == "channel" })
    func channelsNeedAGateway(_ vector: SerializerVector) {
        #expect(throws: SerializerError(.channelOutsideGateway, "")) {
            try loads(Hex.decode(vector.expectedHex))
        }
    }

    @Test("decoding the same channel id twice yields the same channel object")
    func channelIdentity() throws {
        let channels = ChannelRegistry()
        let decoded = try Self.decode(Hex.decode("0242000000034200000003400000000251"), channels: channels)
        guard case .tuple(let items) = decoded, items.count == 2,
              case .channel(let a) = items[0], case .channel(let b) = items[1] else {
            Issue.record("unexpected \(decoded)")
            return
        }
        #expect(a === b)
        #expect(a.id == 3)
    }

    @Test("every invalid input throws a SerializerError", arguments: invalid)
    func rejectsInvalid(_ vector: InvalidVector) {
        let bytes = Hex.decode(vector.hex)
        do {
            let value = try loads(bytes)
            Issue.record("vector \(vector.name) decoded to \(value)")
        } catch {
            // Typed throws: only SerializerError can come out.
            #expect(!error.message.isEmpty, "vector \(vector.name)")
        }
    }

    @Test("invalid inputs without the version byte also fail on the channel decoder", arguments: invalid.filter {
        $0.category != "version" && $0.category != "channel"
    })
    func rejectsInvalidInternal(_ vector: InvalidVector) {
        let bytes = Array(Hex.decode(vector.hex).dropFirst())
        #expect(throws: SerializerError.self, "vector \(vector.name)") {
            try Serializer.decodeInternal(bytes, resolveChannel: nil)
        }
    }

    /// What this port does with the inputs the spec leaves open (documented in docs/PROTOCOL.md).
    static let lenientChoices: [String: Bool] = [
        "trailing_garbage_after_stop": true,
        "list_slots_left_unset": false,
        "list_items_out_of_order": false,
        "dict_duplicate_key": true,
        "longint_with_spaces": true,
        "longint_with_underscore": true,
        "longint_with_plus": true,
    ]

    @Test("lenient inputs are accepted or rejected as each port expectation says", arguments: lenient)
    func lenientInput(_ vector: LenientVector) throws {
        let bytes = Hex.decode(vector.hex)
        let accept: Bool
        switch vector.port_expectation {
        case "must accept": accept = true
        case "should reject": accept = false
        default:
            guard let choice = Self.lenientChoices[vector.name] else {
                Issue.record("no documented choice for \(vector.name)")
                return
            }
            accept = choice
        }
        if accept {
            let expected = try PythonLiteral.parse(vector.python_result_repr)
            #expect(try loads(bytes) == expected, "vector \(vector.name)")
        } else {
            #expect(throws: SerializerError.self, "vector \(vector.name)") { try loads(bytes) }
        }
    }

    @Test("legacy py2 strings decode as latin-1 text on channels and as bytes through loads")
    func py2StringContexts() throws {
        let bytes = Hex.decode("024d00000001e951")
        #expect(try loads(bytes) == .bytes([0xE9]))
        let internalBytes = Array(bytes.dropFirst())
        #expect(try Serializer.decodeInternal(internalBytes, resolveChannel: nil) == .string("\u{E9}"))
        let asBytes = Serializer.StringOptions(py2strAsPy3str: false, py3strAsPy2str: false)
        #expect(try Serializer.decodeInternal(internalBytes, options: asBytes, resolveChannel: nil) == .bytes([0xE9]))
    }

    @Test("py3str_as_py2str keeps text payloads as bytes")
    func py3StringAsBytes() throws {
        let internalBytes = Hex.decode("4e00000002c3a951")
        let options = Serializer.StringOptions(py2strAsPy3str: true, py3strAsPy2str: true)
        #expect(try Serializer.decodeInternal(internalBytes, options: options, resolveChannel: nil) == .bytes([0xC3, 0xA9]))
        #expect(try Serializer.decodeInternal(internalBytes, resolveChannel: nil) == .string("é"))
    }

    @Test("errors carry the byte offset of the failing instruction")
    func errorOffsets() {
        do {
            _ = try loads(Hex.decode("024c4c5a51"))
            Issue.record("decoded garbage")
        } catch {
            #expect(error.code == .unknownOpcode)
            #expect(error.offset == 3)
        }
    }
}
