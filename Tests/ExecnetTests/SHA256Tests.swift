// SHA-256 against the FIPS 180-4 / NIST example vectors, fed whole and in uneven pieces.

@testable import ExecnetCore
import Testing

@Suite struct SHA256Tests {
    private static let vectors: [(input: [UInt8], hex: String)] = [
        (Array("".utf8), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        (Array(repeating: UInt8(ascii: "a"), count: 1_000_000),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        // Lengths around the padding boundary (55, 56, 64 bytes), checked against `sha256sum`.
        (Array(repeating: UInt8(ascii: "x"), count: 55), "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"),
        (Array(repeating: UInt8(ascii: "x"), count: 56), "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"),
        (Array(repeating: UInt8(ascii: "x"), count: 64), "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"),
    ]

    @Test func theStandardVectors() {
        for (input, hex) in Self.vectors {
            #expect(SHA256.hex(SHA256.hash(input)) == hex, "\(input.count) bytes")
        }
    }

    @Test func piecesOfAnySizeGiveTheSameDigest() {
        let input = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = SHA256.hash(input)
        for piece in [1, 3, 55, 56, 63, 64, 65, 1000, 4096] {
            var digest = SHA256()
            var offset = 0
            while offset < input.count {
                let end = min(offset + piece, input.count)
                digest.update(Array(input[offset..<end]))
                offset = end
            }
            #expect(digest.finalize() == whole, "pieces of \(piece)")
        }
    }
}
