// Sending and receiving on a ZMQSocket: whole multipart messages as byte arrays, single frames
// from caller buffers, and frames as ZMQMessage without extra copies. All sizes go through
// zmq_msg_t, so there is no fixed buffer and no size limit. Owning thread only.

import CZeroMQ

extension ZMQSocket {
    // MARK: - Whole messages

    /// Sends `frames` as one multipart message.
    ///
    /// Either the whole message is queued or none of it: only the first frame can meet the
    /// high-water mark, and libzmq never blocks on the later frames of a message it accepted.
    /// On a ROUTER the first frame is the routing id of the peer. Without
    /// ``setRouterMandatory(_:)`` a ROUTER silently drops messages to unknown peers.
    ///
    /// - Parameters:
    ///   - frames: The frames, at least one; each may be empty and of any size.
    ///   - dontWait: Return `false` instead of blocking when the message cannot be queued now.
    /// - Returns: `true` if the message was queued; `false` if it would have blocked (with
    ///   `dontWait`, or after the send timeout), in which case nothing was sent.
    /// - Throws: ``ZMQError`` with `EHOSTUNREACH` (``ZMQError/isHostUnreachable``) when a
    ///   mandatory ROUTER does not know the routing id, `ETERM` when the context is shutting
    ///   down, `ENOTSOCK` if the socket is closed, `ENOTSUP`/`EFSM` for a pattern that cannot
    ///   send now.
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        precondition(!frames.isEmpty, "A ZeroMQ message has at least one frame.")
        let last = frames.count - 1
        for index in frames.indices {
            let sent = try frames[index].withUnsafeBytes { bytes in
                try sendFrame(bytes, more: index < last, dontWait: index == 0 && dontWait)
            }
            if !sent {
                // libzmq admits a message whole once its first frame is in, so only the first
                // frame can be refused; anything else would leave a torn message on the wire.
                precondition(index == 0, "libzmq refused frame \(index) of a multipart message it had accepted.")
                return false
            }
        }
        return true
    }

    /// Receives one whole multipart message.
    ///
    /// libzmq delivers all frames of a message or none, so once the first frame is here the
    /// rest are read without waiting. On a ROUTER the first frame is the sender's routing id.
    ///
    /// - Parameters:
    ///   - dontWait: Return `nil` instead of blocking when no message is waiting.
    /// - Returns: The frames in order, or `nil` if none was waiting (with `dontWait`, or after
    ///   the receive timeout).
    /// - Throws: ``ZMQError`` with `ETERM` when the context is shutting down, `ENOTSOCK` if the
    ///   socket is closed, `EFSM` for a REQ/REP socket in the wrong state.
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    public func receive(dontWait: Bool = false) throws -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var flags = dontWait ? ZMQ_DONTWAIT : 0
        while true {
            guard let (bytes, more) = try receiveFrameBytes(flags: flags) else {
                precondition(frames.isEmpty, "libzmq delivered part of a multipart message.")
                return nil
            }
            frames.append(bytes)
            if !more {
                return frames
            }
            flags = 0
        }
    }

    // MARK: - Frames

    /// Sends one frame copied from `bytes`, as part of a multipart message if `more` is set.
    ///
    /// The bytes are copied once, into the libzmq message; the buffer can be reused as soon as
    /// this returns. Send the frames of one message back to back with `more` on all but the last.
    /// Only the first frame of a message can be refused with `false`.
    ///
    /// - Parameters:
    ///   - bytes: The frame's content; any size, may be empty.
    ///   - more: Whether more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: Return `false` instead of blocking (`ZMQ_DONTWAIT`).
    /// - Returns: `true` if the frame was queued, `false` if it would have blocked.
    /// - Throws: ``ZMQError`` like ``send(_:dontWait:)``, plus `ENOMEM` if the frame cannot be
    ///   allocated.
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    @discardableResult
    public func sendFrame(_ bytes: UnsafeRawBufferPointer, more: Bool, dontWait: Bool) throws -> Bool {
        let socket = try liveHandle("zmq_msg_send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        var message = zmq_msg_t()
        return try withUnsafeMutablePointer(to: &message) { (message) throws(ZMQError) -> Bool in
            try zmqCheck("zmq_msg_init_size") { zmq_msg_init_size(message, bytes.count) }
            if let source = bytes.baseAddress, bytes.count > 0 {
                zmq_msg_data(message).copyMemory(from: source, byteCount: bytes.count)
            }
            do throws(ZMQError) {
                if try zmqCall("zmq_msg_send", { zmq_msg_send(message, socket, flags) }) != nil {
                    return true  // libzmq owns the content now and has emptied `message`.
                }
            } catch {
                zmqMustSucceed("zmq_msg_close") { zmq_msg_close(message) }
                throw error
            }
            zmqMustSucceed("zmq_msg_close") { zmq_msg_close(message) }
            return false
        }
    }

    /// Sends `message` as one frame without copying its content.
    ///
    /// On success libzmq takes the content and `message` is left empty (count 0), ready for
    /// reuse; this is how a broker forwards a received frame without copying it. On `false` or
    /// a throw, `message` is unchanged.
    ///
    /// - Parameters:
    ///   - message: The frame to send; emptied on success.
    ///   - more: Whether more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: Return `false` instead of blocking (`ZMQ_DONTWAIT`).
    /// - Returns: `true` if the frame was queued, `false` if it would have blocked.
    /// - Throws: ``ZMQError`` like ``send(_:dontWait:)``.
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    @discardableResult
    public func sendMessage(_ message: inout ZMQMessage, more: Bool, dontWait: Bool) throws -> Bool {
        let socket = try liveHandle("zmq_msg_send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        let pointer = message.pointer
        return try zmqCall("zmq_msg_send") { zmq_msg_send(pointer, socket, flags) } != nil
    }

    /// Receives one frame into a ``ZMQMessage``, without copying its content.
    ///
    /// Check ``ZMQMessage/hasMore`` to learn whether further frames of the same message follow;
    /// they are already here and can be received without waiting.
    ///
    /// - Parameters:
    ///   - dontWait: Return `nil` instead of blocking when nothing is waiting.
    /// - Returns: The frame, or `nil` if none was waiting (with `dontWait`, or after the receive
    ///   timeout).
    /// - Throws: ``ZMQError`` like ``receive(dontWait:)``.
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    public func receiveMessage(dontWait: Bool) throws -> ZMQMessage? {
        let socket = try liveHandle("zmq_msg_recv")
        let flags = dontWait ? ZMQ_DONTWAIT : 0
        let message = ZMQMessage()
        let pointer = message.pointer
        guard try zmqCall("zmq_msg_recv", { zmq_msg_recv(pointer, socket, flags) }) != nil else {
            return nil
        }
        return message
    }

    /// Sends `bytes` as one frame without copying them: libzmq keeps the array's storage alive
    /// until its I/O thread has written the frame, then releases it.
    ///
    /// Worth it for large frames, where the copy of ``sendFrame(_:more:dontWait:)`` costs more
    /// than the allocation that keeps the array alive.
    ///
    /// - Parameters:
    ///   - bytes: The frame's content; any size.
    ///   - more: Whether more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: Return `false` instead of blocking (`ZMQ_DONTWAIT`).
    /// - Returns: `true` if the frame was queued, `false` if it would have blocked.
    /// - Throws: ``ZMQError`` like ``send(_:dontWait:)``.
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    @discardableResult
    public func sendFrame(noCopy bytes: [UInt8], more: Bool, dontWait: Bool) throws -> Bool {
        let socket = try liveHandle("zmq_msg_send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        let box = Unmanaged.passRetained(FrameStorage(bytes))
        // A native array's storage does not move while `FrameStorage` holds it unchanged.
        let base = box.takeUnretainedValue().bytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) }
        var message = zmq_msg_t()
        return try withUnsafeMutablePointer(to: &message) { (message) throws(ZMQError) -> Bool in
            let rc = zmq_msg_init_data(message, base, bytes.count, { _, hint in
                Unmanaged<FrameStorage>.fromOpaque(hint!).release()
            }, box.toOpaque())
            guard rc == 0 else {
                box.release()
                throw ZMQError(errno: zmq_errno(), operation: "zmq_msg_init_data")
            }
            do throws(ZMQError) {
                if try zmqCall("zmq_msg_send", { zmq_msg_send(message, socket, flags) }) != nil {
                    return true  // libzmq owns the content now and releases the box when done.
                }
            } catch {
                zmqMustSucceed("zmq_msg_close") { zmq_msg_close(message) }
                throw error
            }
            zmqMustSucceed("zmq_msg_close") { zmq_msg_close(message) }
            return false
        }
    }

    /// Receives one frame and lends its bytes to `body` without copying them out of libzmq.
    ///
    /// Not generic on purpose: a generic function called from another module runs unspecialized
    /// and looks up its type metadata on every call, which a receive loop would pay per frame.
    ///
    /// - Parameters:
    ///   - dontWait: Return `false` instead of blocking when nothing is waiting.
    ///   - body: Reads the frame (valid only during the call) and whether more frames follow.
    /// - Returns: Whether a frame was received (and `body` called).
    /// - Throws: ``ZMQError`` like ``receive(dontWait:)``, or what `body` threw (the frame is
    ///   consumed either way).
    /// - Important: Owning thread only. Blocks the calling thread unless `dontWait` is set.
    public func visitReceivedFrame(dontWait: Bool, _ body: (UnsafeRawBufferPointer, _ more: Bool) throws -> Void) throws -> Bool {
        let socket = try liveHandle("zmq_msg_recv")
        let flags = dontWait ? ZMQ_DONTWAIT : 0
        var message = zmq_msg_t()
        return try withUnsafeMutablePointer(to: &message) { message -> Bool in
            zmqMustSucceed("zmq_msg_init") { zmq_msg_init(message) }
            defer { zmqMustSucceed("zmq_msg_close") { zmq_msg_close(message) } }
            guard try zmqCall("zmq_msg_recv", { zmq_msg_recv(message, socket, flags) }) != nil else {
                return false
            }
            let bytes = UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))
            try body(bytes, zmq_msg_more(message) != 0)
            return true
        }
    }

    // MARK: - Private

    /// Receives one frame with `flags` and copies it into an array; `nil` on `EAGAIN`.
    private func receiveFrameBytes(flags: Int32) throws(ZMQError) -> (bytes: [UInt8], more: Bool)? {
        let socket = try liveHandle("zmq_msg_recv")
        var message = zmq_msg_t()
        return try withUnsafeMutablePointer(to: &message) { (message) throws(ZMQError) -> ([UInt8], Bool)? in
            zmqMustSucceed("zmq_msg_init") { zmq_msg_init(message) }
            defer { zmqMustSucceed("zmq_msg_close") { zmq_msg_close(message) } }
            guard try zmqCall("zmq_msg_recv", { zmq_msg_recv(message, socket, flags) }) != nil else {
                return nil
            }
            let count = zmq_msg_size(message)
            let source = UnsafeRawBufferPointer(start: zmq_msg_data(message), count: count)
            let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                initialized = count
            }
            return (bytes, zmq_msg_more(message) != 0)
        }
    }
}

/// Keeps an array alive while libzmq sends it without a copy.
private final class FrameStorage {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}
