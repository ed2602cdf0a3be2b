// CURVE keys as this project stores them: a key file holds one Z85 key; an authorized-keys file
// holds one Z85 public key per line (text after the key is a comment, `#` lines are comments).

import ZeroMQ

/// A CURVE key pair in Z85 text.
public struct CurveKeyPair: Sendable, Hashable {
    /// The public key (40 Z85 characters); safe to share.
    public let publicKey: String
    /// The secret key (40 Z85 characters); keep it private.
    public let secretKey: String

    /// Makes a pair from a secret key, deriving the public key.
    ///
    /// - Parameter secretKey: 40 Z85 characters.
    /// - Throws: ``ExecnetError`` `invalidSpec` if the key is malformed.
    public init(secretKey: String) throws {
        let trimmed = secretKey.trimmingWhitespace()
        guard ZMQCurve.isValidKey(trimmed) else {
            throw ExecnetError(.invalidSpec, "not a Z85 CURVE secret key (expected 40 Z85 characters)")
        }
        self.secretKey = trimmed
        self.publicKey = try ZMQCurve.derivePublicKey(fromSecret: trimmed)
    }

    /// Generates a new random pair.
    ///
    /// - Throws: ``ExecnetError`` `transport` if libzmq has no CURVE.
    public static func generate() throws -> CurveKeyPair {
        do {
            return try CurveKeyPair(secretKey: ZMQCurve.generateKeyPair().secretKey)
        } catch {
            throw ExecnetError(.transport, "cannot generate a CURVE key pair: \(error)", cause: error)
        }
    }

    /// Loads a pair from a secret key file.
    ///
    /// - Parameter path: A file holding the Z85 secret key.
    /// - Throws: ``ExecnetError`` `invalidSpec` if unreadable or malformed.
    public static func load(secretKeyFile path: String) throws -> CurveKeyPair {
        do {
            return try CurveKeyPair(secretKey: try readTextFile(path))
        } catch let error as ExecnetError {
            throw ExecnetError(.invalidSpec, "\(path): \(error.message)")
        }
    }

    /// Writes the secret key (mode 0600) and the public key (0644) to files.
    ///
    /// - Parameters:
    ///   - secretPath: Where the secret key goes.
    ///   - publicPath: Where the public key goes.
    ///   - overwrite: Replace existing files.
    /// - Throws: ``ExecnetError`` if a file exists (without `overwrite`) or cannot be written.
    public func write(secretPath: String, publicPath: String, overwrite: Bool = false) throws {
        try writeTextFile(secretPath, secretKey + "\n", mode: 0o600, overwrite: overwrite)
        try writeTextFile(publicPath, publicKey + "\n", mode: 0o644, overwrite: overwrite)
    }
}

/// Loads a public key (for example the broker's) from a file.
///
/// - Throws: ``ExecnetError`` `invalidSpec` if unreadable or malformed.
public func loadCurvePublicKey(_ path: String) throws -> String {
    let key = try readTextFile(path).trimmingWhitespace()
    guard ZMQCurve.isValidKey(key) else {
        throw ExecnetError(.invalidSpec, "\(path) does not hold a Z85 CURVE public key")
    }
    return key
}

/// The public keys allowed to connect to a broker.
public struct AuthorizedKeys: Sendable, Hashable {
    /// The allowed keys, Z85.
    public let keys: Set<String>

    /// Allows exactly these keys.
    ///
    /// - Parameter keys: Z85 public keys.
    public init(_ keys: Set<String>) {
        self.keys = keys
    }

    /// Parses an authorized-keys file's text.
    ///
    /// - Throws: ``ExecnetError`` `invalidSpec` naming the first malformed line.
    public init(parsing text: String) throws {
        var keys = Set<String>()
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = String(line).trimmingWhitespace()
            if trimmed.isEmpty { continue }
            let key = String(trimmed.prefix { $0 != " " && $0 != "\t" })
            // Z85 has `#` in its alphabet: a line is a comment only if its first word is not a key.
            if trimmed.hasPrefix("#") && !ZMQCurve.isValidKey(key) { continue }
            guard ZMQCurve.isValidKey(key) else {
                throw ExecnetError(.invalidSpec, "line \(number + 1) is not a Z85 public key")
            }
            keys.insert(key)
        }
        self.keys = keys
    }

    /// Loads an authorized-keys file.
    ///
    /// - Throws: ``ExecnetError`` `invalidSpec` if unreadable or malformed.
    public static func load(_ path: String) throws -> AuthorizedKeys {
        do {
            return try AuthorizedKeys(parsing: try readTextFile(path))
        } catch let error as ExecnetError {
            throw ExecnetError(.invalidSpec, "\(path): \(error.message)")
        }
    }

    /// Whether `publicKey` (Z85) may connect.
    public func allows(_ publicKey: String) -> Bool { keys.contains(publicKey) }
}

/// The keys a CURVE client (a client program, an agent or a worker) uses towards a broker.
public struct CurveClientKeys: Sendable, Hashable {
    /// The broker's public key.
    public let serverKey: String
    /// This peer's own pair.
    public let keyPair: CurveKeyPair

    /// Creates client keys.
    ///
    /// - Parameters:
    ///   - serverKey: The broker's public key (Z85).
    ///   - keyPair: This peer's pair.
    public init(serverKey: String, keyPair: CurveKeyPair) {
        self.serverKey = serverKey
        self.keyPair = keyPair
    }

    /// Applies the keys to a DEALER before it connects.
    func apply(to socket: ZMQSocket) throws {
        try socket.setCurveServerKey(serverKey)
        try socket.setCurvePublicKey(keyPair.publicKey)
        try socket.setCurveSecretKey(keyPair.secretKey)
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines (no Foundation).
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
