// The value model of execnet's serializer: every kind the wire format can carry.
// Values are immutable and Sendable; they cross threads freely. Equality, hashing, the
// Python-like description, literals and accessors live in the `Value+…` files next to this one.

/// A plain value as execnet's serializer carries it: what channels send and receive.
///
/// Equality is structural and strict: `.bool(true)`, `.int(1)` and `.float(1.0)` are three
/// different values, and floats compare (and hash) by bit pattern, so `nan == nan` and
/// `0.0 != -0.0`. An integer that fits `Int64` is always ``int(_:)``; ``bigInt(_:)`` holds
/// only magnitudes beyond it (the decoder and ``init(_:)`` normalize; a hand-made `.bigInt`
/// of a small number still compares equal to the matching `.int`).
///
/// Text compares by code points, as in Python, not by Swift's canonical equivalence.
/// Lists and tuples are different values, as are sets and frozen sets. Dictionaries keep
/// insertion order, and their equality is order-sensitive (unlike Python's), since the order
/// is part of what the wire carries. Channels compare by identity.
///
/// Which dict keys and set members are *merged* follows Python instead: decoding merges the
/// ones Python holds equal (`1`, `True`, `1.0`; `0.0` and `-0.0`) and keeps every NaN apart, and
/// encoding refuses a Swift-built dict or set holding two that Python would merge
/// (``SerializerError/Code/pythonDuplicate``). See docs/PROTOCOL.md, "Values".
///
/// Build values with literals (`[1, "a", nil]`, `["k": 1.5]`), with the cases, or from any
/// `Encodable` through ``ValueEncoder``. Encode them with ``dumps(_:)``.
public enum Value: Sendable {
    /// Python's `None`.
    case none
    /// A boolean. Never equal to an integer.
    case bool(Bool)
    /// An integer that fits in `Int64` (the fast path).
    case int(Int64)
    /// An integer outside `Int64`, kept exactly.
    case bigInt(BigInteger)
    /// A binary64 float, compared by bit pattern.
    case float(Double)
    /// A complex number.
    case complex(Complex)
    /// A byte string.
    case bytes([UInt8])
    /// A text string.
    case string(String)
    /// A list.
    case list([Value])
    /// A tuple.
    case tuple([Value])
    /// A dictionary in insertion order.
    case dict(ValueDictionary)
    /// A mutable set.
    case set(ValueSet)
    /// An immutable set.
    case frozenSet(ValueSet)
    /// A reference to a channel of the same gateway.
    case channel(Channel)
    /// A channel reference decoded outside a gateway (``Serializer/loadsUnversioned(_:)``): a
    /// placeholder holding the channel id, which encodes back as that id.
    case channelReference(Int32)
}
