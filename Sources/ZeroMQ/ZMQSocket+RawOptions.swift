// The typed doors to zmq_setsockopt/zmq_getsockopt that every option goes through. Each passes
// a value of the exact C type libzmq expects for the option (int, int64_t or bytes), because a
// wrong size fails with EINVAL. Internal; owning thread only.

import CZeroMQ

extension ZMQSocket {
    /// Sets an `int` option.
    func setInt32Option(_ option: Int32, _ value: Int32, _ operation: StaticString) throws(ZMQError) {
        let socket = try liveHandle(operation)
        var value = value
        try zmqCheck(operation) { zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) }
    }

    /// Sets an `int64_t` option.
    func setInt64Option(_ option: Int32, _ value: Int64, _ operation: StaticString) throws(ZMQError) {
        let socket = try liveHandle(operation)
        var value = value
        try zmqCheck(operation) { zmq_setsockopt(socket, option, &value, MemoryLayout<Int64>.size) }
    }

    /// Sets a binary or string option from its bytes, without a terminator.
    func setBytesOption(_ option: Int32, _ value: [UInt8], _ operation: StaticString) throws(ZMQError) {
        let socket = try liveHandle(operation)
        // Array's buffer accessors rethrow untyped errors, so the outcome leaves as a Result.
        let outcome = value.withUnsafeBytes { bytes in
            Result { () throws(ZMQError) in
                try zmqCheck(operation) { zmq_setsockopt(socket, option, bytes.baseAddress, bytes.count) }
            }
        }
        try outcome.get()
    }

    /// Reads an `int` option.
    func int32Option(_ option: Int32, _ operation: StaticString) throws(ZMQError) -> Int32 {
        let socket = try liveHandle(operation)
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try zmqCheck(operation) { zmq_getsockopt(socket, option, &value, &size) }
        return value
    }

    /// Reads an `int64_t` option.
    func int64Option(_ option: Int32, _ operation: StaticString) throws(ZMQError) -> Int64 {
        let socket = try liveHandle(operation)
        var value: Int64 = 0
        var size = MemoryLayout<Int64>.size
        try zmqCheck(operation) { zmq_getsockopt(socket, option, &value, &size) }
        return value
    }

    /// Reads a binary or string option of at most `capacity` bytes.
    func bytesOption(_ option: Int32, capacity: Int, _ operation: StaticString) throws(ZMQError) -> [UInt8] {
        let socket = try liveHandle(operation)
        var bytes = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        let outcome = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(ZMQError) in
                try zmqCheck(operation) { zmq_getsockopt(socket, option, buffer.baseAddress, &size) }
            }
        }
        try outcome.get()
        bytes.removeSubrange(size...)
        return bytes
    }
}
