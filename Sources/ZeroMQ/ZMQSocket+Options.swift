// Typed socket options: only those swift-execnet uses, each with the C type libzmq expects
// (int, int64 or bytes). Security options (CURVE, ZAP, handshake) are in ZMQSocket+Security.swift.
// Owning thread only, like everything on a socket.

import CZeroMQ

extension ZMQSocket {
    // MARK: - Identity and endpoints

    /// Sets the identity this socket presents to ROUTER peers (`ZMQ_ROUTING_ID`).
    ///
    /// A ROUTER sees every message from this socket prefixed with this id and uses it to reply.
    /// Applies to connections made afterwards, so set it before ``connect(_:)``.
    ///
    /// - Parameters:
    ///   - id: 1 to 255 bytes, not starting with a zero byte (reserved by libzmq).
    /// - Throws: ``ZMQError`` with `EINVAL` for an empty or oversized id, `ETERM`, or `ENOTSOCK`
    ///   if the socket is closed.
    /// - Important: Owning thread only.
    public func setRoutingID(_ id: [UInt8]) throws {
        try setBytesOption(ZMQ_ROUTING_ID, id, "zmq_setsockopt(ZMQ_ROUTING_ID)")
    }

    /// The identity set with ``setRoutingID(_:)`` (`ZMQ_ROUTING_ID`).
    ///
    /// - Returns: The id, or an empty array if none was set.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func routingID() throws -> [UInt8] {
        try bytesOption(ZMQ_ROUTING_ID, capacity: 256, "zmq_getsockopt(ZMQ_ROUTING_ID)")
    }

    /// The endpoint bound or connected most recently, with wildcards resolved (`ZMQ_LAST_ENDPOINT`).
    ///
    /// - Returns: For example `tcp://127.0.0.1:49152`, or an empty string if none.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func lastEndpoint() throws -> String {
        var bytes = try bytesOption(ZMQ_LAST_ENDPOINT, capacity: 1024, "zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        if bytes.last == 0 {
            bytes.removeLast()  // libzmq includes the C string's terminator in the length.
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Queues and shutdown

    /// Sets how long closing the socket keeps trying to send queued messages (`ZMQ_LINGER`).
    ///
    /// Sockets start at 0. Linger only bounds how long unsent messages are kept after
    /// ``close()``; it never guarantees delivery, which is what exit handshakes are for. An
    /// unbounded linger could hang ``ZMQContext/terminate()``, so it is refused.
    ///
    /// - Parameters:
    ///   - milliseconds: 0 or more; negative (infinite) values are a programming error.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func setLinger(milliseconds: Int32) throws {
        precondition(milliseconds >= 0, "Linger must be bounded, or closing a context could hang.")
        try setInt32Option(ZMQ_LINGER, milliseconds, "zmq_setsockopt(ZMQ_LINGER)")
    }

    /// The current linger (`ZMQ_LINGER`).
    ///
    /// - Returns: Milliseconds; 0 unless changed with ``setLinger(milliseconds:)``.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func linger() throws -> Int32 {
        try int32Option(ZMQ_LINGER, "zmq_getsockopt(ZMQ_LINGER)")
    }

    /// Sets how many outgoing messages may queue per peer before sends block (`ZMQ_SNDHWM`).
    ///
    /// - Parameters:
    ///   - limit: Messages per peer; 0 means no limit. libzmq's default is 1000.
    /// - Throws: ``ZMQError`` with `EINVAL` for a negative limit, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only. Set before connecting or binding.
    public func setSendHighWaterMark(_ limit: Int32) throws {
        try setInt32Option(ZMQ_SNDHWM, limit, "zmq_setsockopt(ZMQ_SNDHWM)")
    }

    /// Sets how many incoming messages may queue per peer before libzmq stops reading
    /// (`ZMQ_RCVHWM`).
    ///
    /// - Parameters:
    ///   - limit: Messages per peer; 0 means no limit. libzmq's default is 1000.
    /// - Throws: ``ZMQError`` with `EINVAL` for a negative limit, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only. Set before connecting or binding.
    public func setReceiveHighWaterMark(_ limit: Int32) throws {
        try setInt32Option(ZMQ_RCVHWM, limit, "zmq_setsockopt(ZMQ_RCVHWM)")
    }

    /// Sets the largest incoming message this socket accepts (`ZMQ_MAXMSGSIZE`).
    ///
    /// A peer that sends a larger message over tcp or ipc is disconnected and the message is
    /// dropped; inproc does not enforce the limit.
    ///
    /// - Parameters:
    ///   - bytes: The limit in bytes; -1 means no limit (libzmq's default).
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only. Set before connecting or binding.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        try setInt64Option(ZMQ_MAXMSGSIZE, bytes, "zmq_setsockopt(ZMQ_MAXMSGSIZE)")
    }

    /// The current limit on incoming message size (`ZMQ_MAXMSGSIZE`).
    ///
    /// - Returns: Bytes, or -1 for no limit.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func maxMessageSize() throws -> Int64 {
        try int64Option(ZMQ_MAXMSGSIZE, "zmq_getsockopt(ZMQ_MAXMSGSIZE)")
    }

    /// Makes sends block for at most `milliseconds` (`ZMQ_SNDTIMEO`).
    ///
    /// After the timeout a send returns `false`, as with `dontWait`.
    ///
    /// - Parameters:
    ///   - milliseconds: The bound; -1 (libzmq's default) waits forever, 0 never waits.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func setSendTimeout(milliseconds: Int32) throws {
        try setInt32Option(ZMQ_SNDTIMEO, milliseconds, "zmq_setsockopt(ZMQ_SNDTIMEO)")
    }

    /// Makes receives block for at most `milliseconds` (`ZMQ_RCVTIMEO`).
    ///
    /// After the timeout a receive returns `nil`, as with `dontWait`.
    ///
    /// - Parameters:
    ///   - milliseconds: The bound; -1 (libzmq's default) waits forever, 0 never waits.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func setReceiveTimeout(milliseconds: Int32) throws {
        try setInt32Option(ZMQ_RCVTIMEO, milliseconds, "zmq_setsockopt(ZMQ_RCVTIMEO)")
    }

    // MARK: - Routing and connections

    /// Makes a ROUTER report unroutable messages instead of dropping them (`ZMQ_ROUTER_MANDATORY`).
    ///
    /// With it on, sending to an unknown routing id throws ``ZMQError/isHostUnreachable``, and a
    /// peer whose queue is full makes the send block or return `false`.
    ///
    /// - Parameters:
    ///   - on: Whether routing failures are reported.
    /// - Throws: ``ZMQError`` with `EINVAL` on a socket that is not a ROUTER, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only.
    public func setRouterMandatory(_ on: Bool) throws {
        try setInt32Option(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, "zmq_setsockopt(ZMQ_ROUTER_MANDATORY)")
    }

    /// Lets a reconnecting peer take over its routing id from a stale connection
    /// (`ZMQ_ROUTER_HANDOVER`).
    ///
    /// Without it a ROUTER keeps the old connection and ignores the id of the new one.
    ///
    /// - Parameters:
    ///   - on: Whether a new connection with a known id replaces the old one.
    /// - Throws: ``ZMQError`` with `EINVAL` on a socket that is not a ROUTER, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only.
    public func setRouterHandover(_ on: Bool) throws {
        try setInt32Option(ZMQ_ROUTER_HANDOVER, on ? 1 : 0, "zmq_setsockopt(ZMQ_ROUTER_HANDOVER)")
    }

    /// Queues messages only for completed connections (`ZMQ_IMMEDIATE`).
    ///
    /// With it on, a DEALER whose peer is not connected yet blocks (or returns `false`) instead
    /// of queueing into a pipe that may never connect.
    ///
    /// - Parameters:
    ///   - on: Whether to queue only on completed connections.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only. Set before connecting.
    public func setImmediate(_ on: Bool) throws {
        try setInt32Option(ZMQ_IMMEDIATE, on ? 1 : 0, "zmq_setsockopt(ZMQ_IMMEDIATE)")
    }

    /// Configures ZMTP heartbeats (`ZMQ_HEARTBEAT_IVL`, `_TIMEOUT`, `_TTL`).
    ///
    /// Durations are rounded up to whole milliseconds; `ttl` is kept by libzmq in tenths of a
    /// second and capped at 6553.5 s.
    ///
    /// - Parameters:
    ///   - interval: How often to send a PING; `.zero` disables heartbeats.
    ///   - timeout: How long to wait for traffic after a PING before dropping the connection.
    ///   - ttl: How long the peer should wait for traffic from us before dropping us.
    /// - Throws: ``ZMQError`` with `EINVAL`, `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only. Set before connecting or binding.
    public func setHeartbeat(interval: Duration, timeout: Duration, ttl: Duration) throws {
        try setInt32Option(ZMQ_HEARTBEAT_IVL, interval.zmqMilliseconds, "zmq_setsockopt(ZMQ_HEARTBEAT_IVL)")
        try setInt32Option(ZMQ_HEARTBEAT_TIMEOUT, timeout.zmqMilliseconds, "zmq_setsockopt(ZMQ_HEARTBEAT_TIMEOUT)")
        let ttlMilliseconds = min(ttl.zmqMilliseconds, 6_553_500)
        try setInt32Option(ZMQ_HEARTBEAT_TTL, ttlMilliseconds, "zmq_setsockopt(ZMQ_HEARTBEAT_TTL)")
    }

    /// Sets the reconnection delay and its exponential backoff cap
    /// (`ZMQ_RECONNECT_IVL`, `ZMQ_RECONNECT_IVL_MAX`).
    ///
    /// - Parameters:
    ///   - interval: The delay before the first reconnection attempt.
    ///   - max: The cap for the doubling delay, or `nil` to retry at a constant `interval`.
    /// - Throws: ``ZMQError`` with `EINVAL`, `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only. Set before connecting.
    public func setReconnectInterval(_ interval: Duration, max: Duration?) throws {
        try setInt32Option(ZMQ_RECONNECT_IVL, interval.zmqMilliseconds, "zmq_setsockopt(ZMQ_RECONNECT_IVL)")
        let cap = max?.zmqMilliseconds ?? 0
        try setInt32Option(ZMQ_RECONNECT_IVL_MAX, cap, "zmq_setsockopt(ZMQ_RECONNECT_IVL_MAX)")
    }
}
