// The release of swift-execnet, for `--version` and logs.

/// The release of swift-execnet these modules belong to.
public let execnetVersion = "0.1.0"

/// `--version` text of the executables: the release and the wire protocol version it speaks.
public var execnetVersionText: String { "\(execnetVersion) (wire protocol \(wireProtocolVersion))" }
