// SHA-256 against FIPS 180-4's examples and a known long message.

@testable import ExecnetCore
import Testing

@Suite struct SHA256Tests {
    @Test func theStandardsExamples() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func incrementalUpdatesInOddPiecesGiveTheSameDigest() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for piece in [1, 3, 63, 64, 65, 200] {
            var hash = SHA256()
            var start = 0
            while start < message.count {
                hash.update(message[start..<min(start + piece, message.count)])
                start += piece
            }
            #expect(SHA256.hexString(hash.finalize()) == SHA256.hex(message), "piece \(piece)")
        }
    }

    /// Lengths around the padding boundary (55, 56, 64 bytes), checked against `sha256sum`, and
    /// the digest-only entry point the rsync task uses.
    @Test func lengthsAroundThePaddingBoundary() {
        let vectors: [(input: [UInt8], hex: String)] = [
            (Array(repeating: UInt8(ascii: "x"), count: 55), "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"),
            (Array(repeating: UInt8(ascii: "x"), count: 56), "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"),
            (Array(repeating: UInt8(ascii: "x"), count: 64), "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"),
        ]
        for (input, hex) in vectors {
            #expect(SHA256.hexString(SHA256.hash(input)) == hex, "\(input.count) bytes")
            #expect(SHA256.hash(input).count == SHA256.digestLength)
        }
    }
}
