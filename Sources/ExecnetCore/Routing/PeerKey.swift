// A peer's routing id and its dictionary key, shared by the broker's routing table, the client's
// hub and the router outbox.

/// A peer's ZeroMQ routing id.
package typealias PeerAddress = [UInt8]

/// A routing id as a dictionary key. `[UInt8]`'s own `Hashable` feeds the hasher one byte at a
/// time; the broker looks up the sender of every message it routes, so this feeds it whole words.
package struct PeerKey: Hashable, Sendable {
    package let bytes: PeerAddress

    @inlinable package init(_ bytes: PeerAddress) { self.bytes = bytes }

    @inlinable package static func == (lhs: PeerKey, rhs: PeerKey) -> Bool { lhs.bytes == rhs.bytes }

    @inlinable package func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
