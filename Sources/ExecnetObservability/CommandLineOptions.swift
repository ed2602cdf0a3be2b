// The observability options the executables share: --log-format and --http-address, with their
// environment variables.

import ArgumentParser
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Reads an environment variable, treating empty as unset.
private func environmentValue(_ name: String) -> String? {
    guard let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty else { return nil }
    return value
}

/// The log format from a flag, else EXECNET_LOG_FORMAT, else text.
public func resolveLogFormat(_ flag: String?) throws -> LogFormat {
    let text = flag ?? environmentValue("EXECNET_LOG_FORMAT") ?? "text"
    guard let format = LogFormat(rawValue: text) else {
        throw ValidationError("--log-format must be text or json, not '\(text)'")
    }
    return format
}

/// The observability HTTP address from a flag, else the environment; nil when neither is set.
///
/// - Parameter logger: Where to warn that a non-loopback address is unauthenticated (`nil`: the
///   caller requires a token there instead, see ``resolveHTTPAccess(_:environmentName:for:)``).
public func resolveHTTPAddress(_ flag: String?, environmentName: String, logger: Logger?) throws -> HTTPAddress? {
    guard let text = flag ?? environmentValue(environmentName) else { return nil }
    guard let address = HTTPAddress(parsing: text) else {
        throw ValidationError("--http-address must be HOST:PORT or PORT, not '\(text)'")
    }
    if !address.isLoopback, let logger {
        logger.warning("/metrics, /healthz and /readyz are served without authentication on a non-loopback address",
                       metadata: ["http": "\(address)"])
    }
    return address
}

/// The HTTP port's access rule: a token from the file a flag or the environment names, else open.
///
/// - Throws: ``HTTPAccessError`` `tokenRequired` for a non-loopback `address` without a token,
///   `tokenUnreadable` or `tokenTooShort` for a bad token file.
public func resolveHTTPAccess(_ tokenFileFlag: String?, environmentName: String, for address: HTTPAddress) throws -> HTTPAccess {
    let access = try (tokenFileFlag ?? environmentValue(environmentName)).map { try HTTPAccess(tokenFile: $0) } ?? .open
    try access.validate(for: address)
    return access
}
