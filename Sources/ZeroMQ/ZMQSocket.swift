// ZMQSocket: one libzmq socket, owned by one thread. This file holds its life (create, bind,
// connect, close) and its readiness (events, file descriptor); sending and receiving are in
// ZMQSocket+IO.swift and options in ZMQSocket+Options.swift. Not Sendable by design.

import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The ZeroMQ socket patterns this module supports.
///
/// - Important: A plain value; may be used from any thread.
public enum ZMQSocketType: Sendable, Hashable, CaseIterable {
    /// Routes by peer identity: every received message starts with the sender's routing id,
    /// and the first frame of every sent message names the peer to send to.
    case router
    /// Asynchronous request side: load-balances outgoing messages over its peers, fair-queues
    /// incoming ones, and adds no envelope.
    case dealer
    /// One-to-one bidirectional pipe; used for tests and thread pipes.
    case pair
    /// Synchronous reply side; used for the ZAP authentication handler
    /// (bound to `inproc://zeromq.zap.01`).
    case rep
    /// Synchronous request side.
    case req

    /// The libzmq constant.
    var rawValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .rep: ZMQ_REP
        case .req: ZMQ_REQ
        }
    }
}

/// One libzmq socket, owned by exactly one thread.
///
/// A socket is created, used and closed on its owning thread. `ZMQSocket` is deliberately not
/// `Sendable`, so Swift's strict concurrency checking rejects any attempt to hand it to another
/// thread or task. A socket keeps its ``ZMQContext`` alive; close every socket before the
/// context can terminate.
///
/// Each socket starts with a linger of 0 (the context has `ZMQ_BLOCKY` off): closing it drops
/// whatever has not been sent yet. That is safe because our protocols end with a handshake in
/// which a peer leaves only after its last messages were acknowledged.
///
/// ```swift
/// let router = try ZMQSocket(context: context, type: .router)
/// let endpoint = try router.bind("tcp://127.0.0.1:*")   // "tcp://127.0.0.1:49152"
/// while let message = try router.receive() {              // [routingID, frame, ...]
///     try router.send([message[0], Array("ok".utf8)])
/// }
/// ```
///
/// - Important: Use a socket only on the thread that created it, and close it there. Every
///   method may block only where documented (sends and receives without `dontWait`).
public final class ZMQSocket {
    // MARK: Owning thread only

    /// The context this socket was made from; retained so the context outlives the socket.
    public let context: ZMQContext

    /// The socket's pattern.
    public let type: ZMQSocketType

    /// The libzmq socket, or `nil` once closed.
    private(set) var handle: UnsafeMutableRawPointer?

    /// Creates a socket of `type` on `context`.
    ///
    /// The socket's linger starts at 0; set options before ``bind(_:)`` or ``connect(_:)``,
    /// because most of them apply only to connections made afterwards.
    ///
    /// - Parameters:
    ///   - context: The context that owns the socket's I/O; kept alive by the socket.
    ///   - type: The socket pattern.
    /// - Throws: ``ZMQError`` with `ETERM` if the context is shutting down, or `EMFILE` when
    ///   libzmq's socket limit is reached.
    /// - Important: Call this on the thread that will own the socket.
    public init(context: ZMQContext, type: ZMQSocketType) throws {
        self.context = context
        self.type = type
        self.handle = try context.makeSocketHandle(type: type.rawValue)
    }

    /// Closes the socket if it is still open.
    deinit {
        close()
    }

    /// Accepts incoming connections on `endpoint`.
    ///
    /// Wildcard ports are resolved: binding `tcp://127.0.0.1:*` returns the endpoint with the
    /// port the system picked, which is what tests and spawned workers should publish.
    ///
    /// - Parameters:
    ///   - endpoint: `tcp://host:port` (port may be `*`), `ipc:///path` or `inproc://name`.
    /// - Returns: The endpoint actually bound (`ZMQ_LAST_ENDPOINT`).
    /// - Throws: ``ZMQError`` from `zmq_bind`, for example `EADDRINUSE`, `EINVAL` for a
    ///   malformed endpoint, `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        let socket = try liveHandle("zmq_bind")
        try zmqCheck("zmq_bind") { zmq_bind(socket, endpoint) }
        return try lastEndpoint()
    }

    /// Connects to `endpoint`; the connection itself is made, and remade, in the background.
    ///
    /// Returns before the peer is reached. Messages sent meanwhile are queued unless
    /// ``setImmediate(_:)`` is on.
    ///
    /// - Parameters:
    ///   - endpoint: `tcp://host:port`, `ipc:///path` or `inproc://name`.
    /// - Throws: ``ZMQError`` from `zmq_connect`, for example `EINVAL` for a malformed
    ///   endpoint, `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public func connect(_ endpoint: String) throws {
        let socket = try liveHandle("zmq_connect")
        try zmqCheck("zmq_connect") { zmq_connect(socket, endpoint) }
    }

    /// Stops accepting connections on an endpoint bound earlier.
    ///
    /// - Parameters:
    ///   - endpoint: The endpoint as ``bind(_:)`` returned it (wildcards must be resolved).
    /// - Throws: ``ZMQError`` with `ENOENT` if it was not bound, `ETERM`, or `ENOTSOCK` if the
    ///   socket is closed.
    /// - Important: Owning thread only.
    public func unbind(_ endpoint: String) throws {
        let socket = try liveHandle("zmq_unbind")
        try zmqCheck("zmq_unbind") { zmq_unbind(socket, endpoint) }
    }

    /// Drops a connection made earlier with ``connect(_:)``.
    ///
    /// - Parameters:
    ///   - endpoint: The endpoint exactly as passed to ``connect(_:)``.
    /// - Throws: ``ZMQError`` with `ENOENT` if it was not connected, `ETERM`, or `ENOTSOCK` if
    ///   the socket is closed.
    /// - Important: Owning thread only.
    public func disconnect(_ endpoint: String) throws {
        let socket = try liveHandle("zmq_disconnect")
        try zmqCheck("zmq_disconnect") { zmq_disconnect(socket, endpoint) }
    }

    /// Closes the socket; unsent messages are kept only for the (bounded) linger.
    ///
    /// Idempotent. After closing, every other method throws ``ZMQError`` with `ENOTSOCK`. Once
    /// all sockets of a context are closed, ``ZMQContext/terminate()`` can return.
    ///
    /// - Important: Owning thread only. Also called by `deinit`.
    public func close() {
        guard let socket = handle else { return }
        handle = nil
        zmqMustSucceed("zmq_close") { zmq_close(socket) }
    }

    /// Whether ``close()`` has been called.
    ///
    /// - Returns: `true` once the socket is closed.
    /// - Important: Owning thread only.
    public var isClosed: Bool {
        handle == nil
    }

    /// The socket's current readiness (`ZMQ_EVENTS`).
    ///
    /// Reading it also lets libzmq process pending commands, which is required after
    /// ``fileDescriptor`` signals (that descriptor is edge-triggered).
    ///
    /// - Returns: ``ZMQEvents/readable`` if a whole message can be received now,
    ///   ``ZMQEvents/writable`` if one can be sent without blocking.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public var events: ZMQEvents {
        get throws {
            ZMQEvents(rawValue: try int32Option(ZMQ_EVENTS, "zmq_getsockopt(ZMQ_EVENTS)"))
        }
    }

    /// A file descriptor that becomes readable when ``events`` may have changed (`ZMQ_FD`).
    ///
    /// Lets an external event loop wait on the socket. The descriptor is edge-triggered and
    /// signals only a change: after it fires, read ``events`` and receive until nothing is left.
    /// Never read from or close it.
    ///
    /// - Returns: The descriptor, valid until the socket is closed.
    /// - Throws: ``ZMQError`` with `ETERM`, or `ENOTSOCK` if the socket is closed.
    /// - Important: Owning thread only.
    public var fileDescriptor: Int32 {
        get throws {
            try int32Option(ZMQ_FD, "zmq_getsockopt(ZMQ_FD)")
        }
    }

    /// The live libzmq handle, or an `ENOTSOCK` error naming `operation` if the socket is closed.
    @inline(__always)
    func liveHandle(_ operation: StaticString) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let socket = handle else {
            throw ZMQError(errno: ENOTSOCK, operation: operation.description)
        }
        return socket
    }
}

/// A socket must stay on the thread that created it.
@available(*, unavailable, message: "A ZMQSocket is used by the thread that created it; it never crosses threads.")
extension ZMQSocket: Sendable {}
