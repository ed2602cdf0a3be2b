// The DEALER socket a client or an agent talks to a broker with.

import ZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A DEALER for talking to a broker: a unique routing id (`<kind>.<pid>.<random>`), unlimited
/// pipes (credit windows bound what is in flight), linger 0 (exits are handshakes), quick
/// reconnects, and CURVE keys if given. The caller connects it.
package func makeBrokerDealer(context: ZMQContext, kind: String, keys: CurveClientKeys?) throws -> ZMQSocket {
    let socket = try ZMQSocket(context: context, type: .dealer)
    try socket.setRoutingID(Array("\(kind).\(getpid()).\(String(UInt64.random(in: 0...UInt64.max), radix: 36))".utf8))
    try socket.setLinger(milliseconds: 0)
    try socket.setSendHighWaterMark(0)
    try socket.setReceiveHighWaterMark(0)
    try socket.setReconnectInterval(.milliseconds(100), max: .seconds(2))
    try keys?.apply(to: socket)
    return socket
}
