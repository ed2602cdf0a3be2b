// ZMQMessage: one libzmq frame (a zmq_msg_t) with unique ownership, for zero-copy receives and
// forwarding. The zmq_msg_t lives at a fixed heap address for its whole life and is closed in
// deinit. Noncopyable, so exactly one owner exists; that owner may be on any thread.

import CZeroMQ

/// One ZeroMQ frame, owned uniquely, whose bytes stay inside libzmq.
///
/// Received with ``ZMQSocket/receiveMessage(dontWait:)`` and read in place with
/// ``withUnsafeBytes(_:)``, a frame of any size costs no copy; ``bytes`` copies it out when an
/// array is wanted. ``ZMQSocket/sendMessage(_:more:dontWait:)`` hands the content back to
/// libzmq without copying, so a broker can forward what it received.
///
/// The type is noncopyable: each frame has exactly one owner, and its memory is released
/// (`zmq_msg_close`) when that owner is done with it.
///
/// - Important: A message is not tied to a socket or a thread. Its single owner may move it to
///   another thread (it is `Sendable`), but it must not be used from two threads at once, which
///   noncopyability already prevents.
public struct ZMQMessage: ~Copyable {
    /// The libzmq message, at a stable heap address, initialized for the struct's whole life.
    /// (Visible to inlined code, so reading a frame in another module is not an unspecialized
    /// generic call.)
    @usableFromInline let pointer: UnsafeMutablePointer<zmq_msg_t>

    /// Creates an empty frame (count 0).
    ///
    /// Useful as a frame with no content, such as the empty delimiter of a REQ envelope.
    ///
    /// - Important: May be called from any thread.
    public init() {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: zmq_msg_t())
        zmqMustSucceed("zmq_msg_init") { zmq_msg_init(pointer) }
    }

    /// Creates a frame of `count` bytes whose content is left for the caller to fill.
    ///
    /// Fill it with ``withUnsafeMutableBytes(_:)`` before sending.
    ///
    /// - Parameters:
    ///   - count: The frame's size in bytes; any size.
    /// - Throws: ``ZMQError`` with `ENOMEM` if libzmq cannot allocate it.
    /// - Important: May be called from any thread.
    public init(count: Int) throws {
        let pointer = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        pointer.initialize(to: zmq_msg_t())
        do {
            try zmqCheck("zmq_msg_init_size") { zmq_msg_init_size(pointer, count) }
        } catch {
            pointer.deinitialize(count: 1)
            pointer.deallocate()
            throw error
        }
        self.pointer = pointer
    }

    /// Creates a frame holding a copy of `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: The content to copy; may be empty.
    /// - Throws: ``ZMQError`` with `ENOMEM` if libzmq cannot allocate it.
    /// - Important: May be called from any thread.
    public init(copying bytes: UnsafeRawBufferPointer) throws {
        try self.init(count: bytes.count)
        withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
    }

    /// Creates a frame holding a copy of `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: The content to copy; may be empty.
    /// - Throws: ``ZMQError`` with `ENOMEM` if libzmq cannot allocate it.
    /// - Important: May be called from any thread.
    public init(bytes: [UInt8]) throws {
        try self.init(count: bytes.count)
        withUnsafeMutableBytes { target in
            bytes.withUnsafeBytes { target.copyMemory(from: $0) }
        }
    }

    /// Closes the libzmq message, releasing (or dereferencing) its content.
    deinit {
        zmqMustSucceed("zmq_msg_close") { zmq_msg_close(pointer) }
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }

    /// The frame's size in bytes.
    ///
    /// - Returns: The number of content bytes.
    /// - Important: Owner only.
    @inlinable
    public var count: Int {
        zmq_msg_size(pointer)
    }

    /// Whether further frames of the same multipart message follow this one.
    ///
    /// Meaningful for frames received with ``ZMQSocket/receiveMessage(dontWait:)``; always
    /// `false` for frames created locally.
    ///
    /// - Returns: `true` if the sender set `ZMQ_SNDMORE` on this frame.
    /// - Important: Owner only.
    @inlinable
    public var hasMore: Bool {
        zmq_msg_more(pointer) != 0
    }

    /// Calls `body` with the ZAP user id of the connection the frame came on, in place.
    ///
    /// The user id is the message property `User-Id` (`zmq_msg_gets`): what the ZAP handler
    /// answered for the sender's connection (a CURVE broker's handler can make it the sender's
    /// public key). `nil` when the connection had no ZAP handshake, and for the routing-id frame a
    /// ROUTER adds (it carries no properties): read it from the frame after that.
    ///
    /// - Parameter body: Reads the user id (valid only during the call).
    /// - Returns: What `body` returned.
    /// - Important: Owner only.
    public func visitUserID(_ body: (UnsafeRawBufferPointer?) -> Bool) -> Bool {
        guard let text = zmq_msg_gets(pointer, "User-Id") else { return body(nil) }
        var count = 0
        while text[count] != 0 { count += 1 }
        return body(UnsafeRawBufferPointer(start: text, count: count))
    }

    /// Calls `body` with the frame's bytes, in place.
    ///
    /// The buffer is valid only during `body`; do not let it escape.
    ///
    /// - Parameters:
    ///   - body: Reads the content.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    /// - Important: Owner only.
    @inlinable
    public func withUnsafeBytes<Result, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> Result
    ) throws(E) -> Result {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
    }

    /// Calls `body` with the frame's bytes for writing, in place.
    ///
    /// Intended for filling a frame made with ``init(count:)``. Do not write to a received frame
    /// that is being forwarded elsewhere as well.
    ///
    /// - Parameters:
    ///   - body: Writes the content.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    /// - Important: Owner only.
    public mutating func withUnsafeMutableBytes<Result, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> Result
    ) throws(E) -> Result {
        try body(UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
    }

    /// A copy of the frame's bytes.
    ///
    /// - Returns: A new array holding the content.
    /// - Important: Owner only.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }
}

/// The single owner of a message may hand it to another thread: libzmq message content is
/// reference-counted atomically and nothing in `zmq_msg_t` is tied to a thread.
extension ZMQMessage: @unchecked Sendable {}
