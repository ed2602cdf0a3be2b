// Who may read the observability HTTP port. On loopback it is open (as the status socket of a
// broker without CURVE is); anywhere else a bearer token is required, and it grants exactly what
// the broker's `status` key role grants (docs/SECURITY.md): read the whole status, nothing else.
// `/healthz` and `/readyz` stay open: they tell only whether the process lives and is ready, and
// the kubelet's probes cannot carry a secret.

import Foundation
import Hummingbird

/// Why the observability HTTP server may not start as configured.
public struct HTTPAccessError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable { case tokenRequired, tokenUnreadable, tokenTooShort }
        private let kind: Kind
        /// A non-loopback address without a token.
        public static let tokenRequired = Code(kind: .tokenRequired)
        /// The token file cannot be read.
        public static let tokenUnreadable = Code(kind: .tokenUnreadable)
        /// The token is shorter than ``HTTPAccess/minimumTokenLength``.
        public static let tokenTooShort = Code(kind: .tokenTooShort)

        public var description: String {
            switch kind {
            case .tokenRequired: "tokenRequired"
            case .tokenUnreadable: "tokenUnreadable"
            case .tokenTooShort: "tokenTooShort"
            }
        }
    }

    /// What is wrong.
    public let code: Code
    /// A sentence for the operator.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
}

/// The access rule of the observability HTTP port: open on loopback, a bearer token elsewhere.
///
/// With a token every request must present it, as `Authorization: Bearer TOKEN` or, for a
/// browser's page and its event stream (an `EventSource` cannot set headers), as the query
/// parameter `token=TOKEN`; `/healthz` and `/readyz` are exempt. The token is the HTTP form of the
/// broker's `status` key role: it reads the whole status and nothing else.
public struct HTTPAccess: Sendable, Equatable {
    /// Tokens shorter than this are refused (a guessable secret guards nothing).
    public static let minimumTokenLength = 16

    /// The token, if one is required.
    public let token: String?

    /// No token: only allowed on a loopback address.
    public static let open = HTTPAccess(checkedToken: nil)

    private init(checkedToken: String?) {
        self.token = checkedToken
    }

    /// A token rule.
    ///
    /// - Parameter token: The secret (surrounding whitespace is ignored).
    /// - Throws: ``HTTPAccessError`` `tokenTooShort`.
    public init(token: String) throws {
        let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count >= Self.minimumTokenLength, !trimmed.contains(where: \.isWhitespace) else {
            throw HTTPAccessError(.tokenTooShort, "the HTTP token must be at least \(Self.minimumTokenLength) characters without spaces")
        }
        self.token = trimmed
    }

    /// Reads the token from a file (its first line).
    ///
    /// - Throws: ``HTTPAccessError`` `tokenUnreadable` or `tokenTooShort`.
    public init(tokenFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HTTPAccessError(.tokenUnreadable, "cannot read the HTTP token file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        try self.init(token: String(text.split(separator: "\n", omittingEmptySubsequences: true).first ?? ""))
    }

    /// Checks that this rule may guard `address`.
    ///
    /// - Throws: ``HTTPAccessError`` `tokenRequired` for a non-loopback address without a token.
    public func validate(for address: HTTPAddress) throws {
        if token == nil && !address.isLoopback {
            throw HTTPAccessError(.tokenRequired, """
                the observability HTTP port on \(address) is not loopback: give it a token \
                (--http-token-file or its environment variable), or bind it to 127.0.0.1
                """)
        }
    }

    /// Whether a request may pass: every request when there is no token; else the probes, and
    /// any request presenting the token.
    func admits(_ request: Request) -> Bool {
        guard let token else { return true }
        let path = request.uri.path
        if path == "/healthz" || path == "/readyz" { return true }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), Array(token.utf8)) {
            return true
        }
        if let query = request.uri.queryParameters.get("token"), Self.constantTimeEqual(Array(query.utf8), Array(token.utf8)) {
            return true
        }
        return false
    }

    /// Compares without an early exit, so the time taken does not tell how much of a guess was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

/// Answers 401 to requests that do not present the token.
struct HTTPAccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: HTTPAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.admits(request) else {
            return Response(status: .unauthorized,
                            headers: [.contentType: "text/plain; charset=utf-8", .wwwAuthenticate: "Bearer"],
                            body: .init(byteBuffer: ByteBuffer(string: "a token is required (Authorization: Bearer, or ?token=)\n")))
        }
        return try await next(request, context)
    }
}
