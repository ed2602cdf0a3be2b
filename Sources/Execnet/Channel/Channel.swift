// PLACEHOLDER while the runtime is written: only what the serializer needs.

/// A bidirectional, ordered message channel to a task running in a gateway.
public final class Channel: Sendable {
    /// The channel's id within its gateway connection (odd: opened by the client, even: by the worker).
    public let id: Int32

    init(id: Int32) {
        self.id = id
    }
}

extension Channel: Hashable {
    public static func == (lhs: Channel, rhs: Channel) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
