// Asking a broker for its status table from outside: a short-lived DEALER sends BROKER_STATUS and
// waits a bounded time for the reply. Used by `execnet-broker status` and health checks.

import ExecnetCore
import ExecnetValue
import ZeroMQ

/// Reads a broker's status: hosts, workers, gateways, open channels and message rates.
public enum BrokerStatusQuery {
    /// Asks the broker at `endpoint` for its status.
    ///
    /// - Parameters:
    ///   - endpoint: The broker's endpoint.
    ///   - keys: CURVE keys, for a CURVE broker.
    ///   - timeout: How long to wait for the answer.
    /// - Returns: The status dict (keys `hosts`, `gateways`, `workers`, `channels`, `clients`,
    ///   `messages_in`, `messages_out`, `rate_in`, `rate_out`, `pid`, `uptime_s`, `endpoints`).
    /// - Throws: ``ExecnetError`` `timeout` if the broker does not answer (or refuses the key),
    ///   `invalidState` if the key may not read the status (a worker's credential), `transport`
    ///   if the socket fails. A client key reads only its own gateways, an agent key the hosts
    ///   and no gateway, a status key everything.
    /// - Important: Blocks the calling thread up to `timeout`.
    @available(*, noasync, message: "blocks the calling thread")
    public static func fetch(endpoint: String, keys: CurveClientKeys? = nil, timeout: Duration = .seconds(5)) throws -> Value {
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .dealer)
        defer { socket.close() }
        try socket.setLinger(milliseconds: 0)
        try keys?.apply(to: socket)
        try socket.connect(endpoint)
        try socket.send([[]] + WireMessage(channelID: 1, type: .brokerStatus, payload: []).frames)
        var poller = ZMQPoller()
        _ = poller.add(socket, events: .readable)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            guard case .ready = try poller.poll(timeout: ContinuousClock.now.duration(to: deadline)) else { continue }
            guard let frames = try socket.receive(dontWait: true) else { continue }
            guard frames.count == 4, let message = try? WireMessage.parse(frames.dropFirst()),
                message.type == .brokerStatus, let status = ControlPayload(decoding: message.payload)
            else { continue }
            if let refusal = status.string("error") { throw ExecnetError(.invalidState, "broker \(endpoint): \(refusal)") }
            return .dict(status.fields)
        }
        throw ExecnetError(.timeout, "broker \(endpoint) did not answer within \(timeout)")
    }
}
