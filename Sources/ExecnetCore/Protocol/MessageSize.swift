// The message size limit shared by the broker, the hub and every connection.

/// The default largest message: 256 MiB.
public let defaultMaxMessageSize = 256 << 20
