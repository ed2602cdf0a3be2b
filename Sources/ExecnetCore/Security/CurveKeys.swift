// CURVE keys as this project stores them: a key file holds one Z85 key; an authorized-keys file
// holds one Z85 public key per line with its roles (`agent KEY comment`; see AuthorizedKeys).

import ExecnetValue
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

extension CurveKeyPair: CustomStringConvertible, CustomDebugStringConvertible {
    /// The public key only: a pair printed in a log or an error never shows its secret.
    public var description: String { "CurveKeyPair(publicKey: \(publicKey), secretKey: <redacted>)" }

    /// The same as ``description``.
    public var debugDescription: String { description }
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

/// What a key may do at a broker.
///
/// A key has one or more roles: `client` (start gateways, talk to its own workers, read the
/// status of its own gateways), `agent` (register a host and run workers), `status` (read the
/// whole status table and nothing else).
public struct KeyRoles: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// May register with CLIENT_HELLO, start gateways and read the status of its own gateways.
    public static let client = KeyRoles(rawValue: 1)
    /// May register a host with AGENT_HELLO and run the workers the broker asks for.
    public static let agent = KeyRoles(rawValue: 2)
    /// May read the broker's whole status table, and nothing else.
    public static let status = KeyRoles(rawValue: 4)

    /// The role words of the authorized-keys file.
    static let words: [(String, KeyRoles)] = [("client", .client), ("agent", .agent), ("status", .status)]

    /// Parses `client`, `agent`, `status` or a comma-separated list of them.
    init?(words text: Substring) {
        var roles = KeyRoles()
        for word in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let role = Self.words.first(where: { $0.0 == word })?.1 else { return nil }
            roles.insert(role)
        }
        self = roles
    }
}

/// The public keys allowed to connect to a broker, each with its roles.
///
/// The file format: one key per line, `[ROLES] KEY [comment]`, where `ROLES` is `client`,
/// `agent`, `status` or a comma-separated list of them (`client,status`), and `KEY` is 40 Z85
/// characters. A line without a role word (the format before roles existed) gives the key the
/// `client` role only, so an old file never lets a key register as an agent. Empty lines and
/// lines whose first word is neither a role nor a key but starts with `#` are comments.
public struct AuthorizedKeys: Sendable, Hashable {
    /// The allowed keys (Z85) and their roles.
    public let roles: [String: KeyRoles]
    /// How many lines had no role word (and so got `client`).
    public let linesWithoutRole: Int
    /// The comment after each key on its line (the rest of the line), where it had one: the name
    /// the broker shows for the key in its status and dashboard instead of a fingerprint.
    public private(set) var comments: [String: String] = [:]

    /// The allowed keys, Z85.
    public var keys: Set<String> { Set(roles.keys) }

    /// Allows exactly these keys, each with `roles`.
    ///
    /// - Parameters:
    ///   - keys: Z85 public keys.
    ///   - roles: The roles every one of them gets (default: client).
    public init(_ keys: Set<String>, roles: KeyRoles = .client) {
        self.roles = Dictionary(uniqueKeysWithValues: keys.map { ($0, roles) })
        self.linesWithoutRole = 0
    }

    /// Allows these keys with their roles.
    ///
    /// - Parameter roles: Z85 public key to its roles.
    public init(roles: [String: KeyRoles]) {
        self.roles = roles
        self.linesWithoutRole = 0
    }

    /// Parses an authorized-keys file's text (see the type's documentation for the format).
    ///
    /// - Throws: ``ExecnetError`` `invalidSpec` naming the first malformed line.
    public init(parsing text: String) throws {
        var roles: [String: KeyRoles] = [:]
        var comments: [String: String] = [:]
        var withoutRole = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = String(line).trimmingWhitespace().split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = words.first else { continue }
            // Z85 has `#` in its alphabet: a line is a comment only if its first word is not a key.
            if ZMQCurve.isValidKey(String(first)) {
                roles[String(first), default: []].insert(.client)
                withoutRole += 1
                if words.count > 1 { comments[String(first)] = words.dropFirst().joined(separator: " ") }
                continue
            }
            if first.hasPrefix("#") { continue }
            guard let lineRoles = KeyRoles(words: first) else {
                throw ExecnetError(.invalidSpec, "line \(number + 1): '\(first)' is neither a role (client, agent, status) nor a Z85 public key")
            }
            guard words.count >= 2, ZMQCurve.isValidKey(String(words[1])) else {
                throw ExecnetError(.invalidSpec, "line \(number + 1): the role '\(first)' is not followed by a Z85 public key")
            }
            roles[String(words[1]), default: []].formUnion(lineRoles)
            if words.count > 2 { comments[String(words[1])] = words.dropFirst(2).joined(separator: " ") }
        }
        self.roles = roles
        self.linesWithoutRole = withoutRole
        self.comments = comments
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
    public func allows(_ publicKey: String) -> Bool { roles[publicKey] != nil }

    /// The roles of `publicKey` (Z85); empty if it is not allowed.
    public func roles(of publicKey: String) -> KeyRoles { roles[publicKey] ?? [] }
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
    package func apply(to socket: ZMQSocket) throws {
        try socket.setCurveServerKey(serverKey)
        try socket.setCurvePublicKey(keyPair.publicKey)
        try socket.setCurveSecretKey(keyPair.secretKey)
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines (no Foundation).
    package func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
