// Payloads of control messages (hello, spawn, peer lost, …): dicts with string keys in the
// serializer's internal form, without channel references.

import ExecnetValue

/// A decoded control payload: a dict with string keys.
package struct ControlPayload: Sendable {
    package var fields: ValueDictionary

    package init(_ fields: ValueDictionary = [:]) {
        self.fields = fields
    }

    /// Decodes a payload; `nil` if it is not a dict.
    package init?(decoding bytes: [UInt8]) {
        guard case .dict(let dict)? = try? Serializer.decodeInternal(bytes, resolveChannel: nil) else { return nil }
        fields = dict
    }

    /// The encoded payload.
    package var encoded: [UInt8] {
        var buffer: [UInt8] = []
        // A dict of plain values always encodes; a failure here would be our own bug.
        try! Serializer.encodeInternal(.dict(fields), into: &buffer)
        return buffer
    }

    package subscript(_ key: String) -> Value? {
        get { fields[.string(key)] }
        set { fields[.string(key)] = newValue }
    }

    package func string(_ key: String) -> String? {
        if case .string(let text)? = self[key] { return text }
        return nil
    }

    package func int(_ key: String) -> Int64? {
        if case .int(let number)? = self[key] { return number }
        return nil
    }

    package func bytes(_ key: String) -> [UInt8]? {
        if case .bytes(let bytes)? = self[key] { return bytes }
        return nil
    }

    /// A worker's exit as carried in `workerExited` and `peerLost`: `exited` or `signaled`, or
    /// `heartbeat` for a lost peer.
    package var workerExit: WorkerExit? {
        if let code = int("exited") { return .exited(Int32(truncatingIfNeeded: code)) }
        if let signal = int("signaled") { return .signaled(Int32(truncatingIfNeeded: signal)) }
        if case .bool(true)? = self["heartbeat"] { return .heartbeatLost }
        return nil
    }

    package mutating func setWorkerExit(_ exit: WorkerExit) {
        switch exit {
        case .exited(let code): self["exited"] = .int(Int64(code))
        case .signaled(let signal): self["signaled"] = .int(Int64(signal))
        case .heartbeatLost: self["heartbeat"] = true
        }
    }
}

/// Encodes a plain value as a payload (for string payloads such as `spawnFailed`).
package func encodePlain(_ value: Value) -> [UInt8] {
    var buffer: [UInt8] = []
    try! Serializer.encodeInternal(value, into: &buffer)
    return buffer
}

/// Decodes a string payload, if it is one.
package func decodeString(_ bytes: [UInt8]) -> String? {
    if case .string(let text)? = try? Serializer.decodeInternal(bytes, resolveChannel: nil) { return text }
    return nil
}
