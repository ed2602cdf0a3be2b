// Security options of a ZMQSocket: CURVE keys and roles, the ZAP domain and the handshake
// timeout. Keys are Z85 text (40 characters), as ZMQCurve makes them. Owning thread only.

import CZeroMQ

extension ZMQSocket {
    /// Makes this socket the CURVE server side of its connections (`ZMQ_CURVE_SERVER`).
    ///
    /// A server needs its secret key (``setCurveSecretKey(_:)``); clients need the server's
    /// public key. Without a ZAP handler every client with a valid handshake is accepted.
    ///
    /// - Parameters:
    ///   - on: Whether to act as CURVE server.
    /// - Throws: ``ZMQError`` with `EINVAL` if libzmq was built without CURVE, `ETERM`, or
    ///   `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only. Set before binding or connecting.
    public func setCurveServer(_ on: Bool) throws {
        try setInt32Option(ZMQ_CURVE_SERVER, on ? 1 : 0, "zmq_setsockopt(ZMQ_CURVE_SERVER)")
    }

    /// Sets this socket's own long-term public key (`ZMQ_CURVE_PUBLICKEY`).
    ///
    /// Clients set their own key pair and the server's public key; setting the public key
    /// makes the socket a CURVE client.
    ///
    /// - Parameters:
    ///   - z85: The public key as 40 Z85 characters.
    /// - Throws: ``ZMQError`` with `EINVAL` for a malformed key, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only. Set before binding or connecting.
    public func setCurvePublicKey(_ z85: String) throws {
        try setBytesOption(ZMQ_CURVE_PUBLICKEY, Array(z85.utf8), "zmq_setsockopt(ZMQ_CURVE_PUBLICKEY)")
    }

    /// Sets this socket's own long-term secret key (`ZMQ_CURVE_SECRETKEY`).
    ///
    /// - Parameters:
    ///   - z85: The secret key as 40 Z85 characters.
    /// - Throws: ``ZMQError`` with `EINVAL` for a malformed key, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only. Set before binding or connecting.
    public func setCurveSecretKey(_ z85: String) throws {
        try setBytesOption(ZMQ_CURVE_SECRETKEY, Array(z85.utf8), "zmq_setsockopt(ZMQ_CURVE_SECRETKEY)")
    }

    /// Sets the public key of the server this client expects (`ZMQ_CURVE_SERVERKEY`).
    ///
    /// If the server does not hold the matching secret key the handshake fails and no message
    /// passes in either direction; libzmq keeps retrying in the background.
    ///
    /// - Parameters:
    ///   - z85: The server's public key as 40 Z85 characters.
    /// - Throws: ``ZMQError`` with `EINVAL` for a malformed key, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only. Set before connecting.
    public func setCurveServerKey(_ z85: String) throws {
        try setBytesOption(ZMQ_CURVE_SERVERKEY, Array(z85.utf8), "zmq_setsockopt(ZMQ_CURVE_SERVERKEY)")
    }

    /// Sets the authentication domain reported to the ZAP handler (`ZMQ_ZAP_DOMAIN`).
    ///
    /// The ZAP handler is a REP socket bound to `inproc://zeromq.zap.01` on the same context.
    ///
    /// - Parameters:
    ///   - domain: The domain name; up to 254 bytes of UTF-8.
    /// - Throws: ``ZMQError`` with `EINVAL` for an oversized domain, `ETERM`, or `ENOTSOCK`.
    /// - Important: Owning thread only. Set before binding.
    public func setZAPDomain(_ domain: String) throws {
        try setBytesOption(ZMQ_ZAP_DOMAIN, Array(domain.utf8), "zmq_setsockopt(ZMQ_ZAP_DOMAIN)")
    }

    /// Bounds how long a connection may take to complete its ZMTP handshake (`ZMQ_HANDSHAKE_IVL`).
    ///
    /// A peer that does not finish in time (for example a CURVE client with a wrong server
    /// key, or something that is not ZeroMQ at all) is disconnected.
    ///
    /// - Parameters:
    ///   - duration: The bound, rounded up to milliseconds; `.zero` disables it. libzmq's
    ///     default is 30 s.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only. Set before binding or connecting.
    public func setHandshakeInterval(_ duration: Duration) throws {
        try setInt32Option(ZMQ_HANDSHAKE_IVL, duration.zmqMilliseconds, "zmq_setsockopt(ZMQ_HANDSHAKE_IVL)")
    }
}
