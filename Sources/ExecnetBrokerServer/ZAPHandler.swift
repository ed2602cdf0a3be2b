// The ZAP handler (ZeroMQ RFC 27): libzmq asks it, over inproc://zeromq.zap.01, whether a CURVE
// client's public key may connect. It answers from the broker's authorized keys and the worker
// credentials it minted, and gives each connection the key itself (Z85) as its user id, which
// every message then carries (`User-Id`), so the broker knows the key behind each message. On the
// broker's I/O thread.

import Logging
import ZeroMQ

/// Answers ZAP requests for CURVE clients from an allow-list; the user id is the Z85 key.
///
/// - Important: Used on its I/O thread only.
final class ZAPHandler {
    /// The fixed endpoint libzmq sends ZAP requests to.
    static let endpoint = "inproc://zeromq.zap.01"

    let socket: ZMQSocket
    /// Whether a Z85 public key may connect (asked on the same thread).
    let allows: (String) -> Bool
    let logger: Logger

    init(context: ZMQContext, logger: Logger, allows: @escaping (String) -> Bool) throws {
        socket = try ZMQSocket(context: context, type: .rep)
        try socket.setLinger(milliseconds: 0)
        try socket.bind(Self.endpoint)
        self.allows = allows
        self.logger = logger
    }

    /// Answers every waiting request.
    func handleRequests() {
        while let request = try? socket.receive(dontWait: true) {
            // version, request id, domain, address, identity, mechanism, credentials…
            guard request.count >= 6 else {
                logger.warning("malformed ZAP request with \(request.count) frames")
                _ = try? socket.send([Array("1.0".utf8), [], Array("500".utf8), Array("malformed".utf8), [], []])
                continue
            }
            let requestID = request[1]
            let address = String(decoding: request[3], as: UTF8.self)
            let mechanism = String(decoding: request[5], as: UTF8.self)
            var allowed = false
            var key = "?"
            if mechanism == "CURVE", request.count >= 7, let z85 = ZMQCurve.z85Encode(request[6]) {
                key = z85
                allowed = allows(z85)
            }
            if allowed {
                logger.debug("ZAP: allowed \(key) from \(address)")
            } else {
                logger.warning("ZAP: refused \(mechanism) key \(key) from \(address)")
            }
            let status = allowed ? "200" : "400"
            let text = allowed ? "OK" : "key not authorized"
            _ = try? socket.send([Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(key.utf8), []])
        }
    }

    func close() { socket.close() }
}
