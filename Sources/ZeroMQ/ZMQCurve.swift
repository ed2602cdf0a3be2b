// CURVE key material in Z85 text (40 characters per 32-byte key): generating key pairs,
// deriving a public key from a secret one, and asking whether libzmq was built with CURVE.
// Stateless; any thread.

import CZeroMQ

/// Key pairs for ZeroMQ's CURVE security mechanism, as Z85 text.
///
/// A CURVE server holds a long-term key pair and publishes its public key; each client makes
/// its own pair and is given the server's public key (``ZMQSocket/setCurveServerKey(_:)``).
///
/// - Important: Stateless; every member may be used from any thread.
public enum ZMQCurve {
    /// The length of a Z85-encoded CURVE key.
    static let z85KeyLength = 40

    /// Generates a new random long-term key pair (`zmq_curve_keypair`).
    ///
    /// - Returns: The public and secret keys, each 40 Z85 characters.
    /// - Throws: ``ZMQError`` with `ENOTSUP` if libzmq was built without CURVE
    ///   (see ``isAvailable``).
    /// - Important: May be called from any thread.
    public static func generateKeyPair() throws -> (publicKey: String, secretKey: String) {
        var publicKey = [CChar](repeating: 0, count: z85KeyLength + 1)
        var secretKey = [CChar](repeating: 0, count: z85KeyLength + 1)
        try zmqCheck("zmq_curve_keypair") { zmq_curve_keypair(&publicKey, &secretKey) }
        return (text(publicKey), text(secretKey))
    }

    /// Computes the public key that belongs to a secret key (`zmq_curve_public`).
    ///
    /// - Parameters:
    ///   - secretKey: A secret key as 40 Z85 characters.
    /// - Returns: The matching public key, 40 Z85 characters.
    /// - Throws: ``ZMQError`` with `EINVAL` if `secretKey` is not 40 Z85 characters, or
    ///   `ENOTSUP` if libzmq was built without CURVE.
    /// - Important: May be called from any thread.
    public static func derivePublicKey(fromSecret secretKey: String) throws -> String {
        guard secretKey.utf8.count == z85KeyLength else {
            throw ZMQError(errno: EINVAL, operation: "zmq_curve_public")
        }
        var publicKey = [CChar](repeating: 0, count: z85KeyLength + 1)
        try zmqCheck("zmq_curve_public") { zmq_curve_public(&publicKey, secretKey) }
        return text(publicKey)
    }

    /// Encodes a 32-byte binary key as Z85 text (`zmq_z85_encode`), as ZAP requests carry keys in
    /// binary and key files hold them as text.
    ///
    /// - Parameters:
    ///   - key: Exactly 32 bytes.
    /// - Returns: 40 Z85 characters, or `nil` if `key` is not 32 bytes.
    /// - Important: May be called from any thread.
    public static func z85Encode(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: z85KeyLength + 1)
        guard zmq_z85_encode(&text, key, key.count) != nil else { return nil }
        return Self.text(text)
    }

    /// Whether `text` is a well-formed Z85 CURVE key (40 characters that decode to 32 bytes).
    ///
    /// - Parameters:
    ///   - text: The candidate key.
    /// - Returns: `true` if it decodes.
    /// - Important: May be called from any thread.
    public static func isValidKey(_ text: String) -> Bool {
        guard text.utf8.count == z85KeyLength else { return false }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, text) != nil
    }

    /// Whether this libzmq supports CURVE (`zmq_has("curve")`).
    ///
    /// Debian's and Homebrew's builds do.
    ///
    /// - Returns: `true` if CURVE can be used.
    /// - Important: May be read from any thread.
    public static var isAvailable: Bool {
        zmq_has("curve") != 0
    }

    /// Decodes a NUL-terminated key buffer.
    private static func text(_ characters: [CChar]) -> String {
        let bytes = characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The version of the libzmq library loaded at run time.
///
/// - Important: Stateless; may be used from any thread.
public enum ZMQVersion {
    /// The loaded libzmq's version (`zmq_version`), for example `(4, 3, 4)`.
    ///
    /// This is the library found at run time, which may differ from the headers built against.
    ///
    /// - Returns: The major, minor and patch numbers.
    /// - Important: May be read from any thread.
    public static var current: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
