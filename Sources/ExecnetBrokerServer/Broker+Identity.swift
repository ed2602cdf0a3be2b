// Who sends each message, and what that key may do. The ZAP handler gives every CURVE connection
// its public key as user id; every message carries it (`User-Id`). A registered routing id is
// bound to the key that registered it (a worker's: the credential the broker minted for its
// SPAWN), and every message from it must carry that key: one comparison per run of messages
// from one peer, a table look-up when the sender changes. Roles come from the authorized-keys
// file: clients start gateways, agents register hosts, status keys read status. Without CURVE
// (loopback brokers) there are no keys, and every peer has every role.

import ExecnetCore
import Logging
import ZeroMQ

extension Broker {
    // MARK: - Connections and messages

    /// The ZAP decision: a key of the authorized list, or a worker credential minted for a
    /// SPAWN and not yet revoked (it is revoked when its worker is removed).
    func allowsConnection(_ z85: String) -> Bool {
        authorizedKeys?.allows(z85) == true || table.credentials[z85] != nil
    }

    /// The per-message check: whether the key of the connection a message came on (read from
    /// `frame`, the first after the routing id) is the one its routing id is bound to. Refused
    /// messages are logged and discarded unanswered (an answer would go to the routing id's
    /// owner, not to the sender).
    ///
    /// Sets ``senderKey`` to the message's key.
    func admit(_ address: PeerAddress, _ frame: borrowing ZMQMessage) -> Bool {
        guard authorizedKeys != nil else { return true }
        return frame.visitUserID { userID in
            guard let userID, userID.count > 0 else {
                logRefusal("dropped a message without a CURVE user id from \(hexDump(address))")
                return false
            }
            // The same peer as the last message, with the same key: one comparison.
            if userID.count == senderKey.count, address == verifiedAddress,
                senderKey.withUnsafeBytes({ $0.elementsEqual(userID) }) {
                return true
            }
            let key = Array(userID)
            if let bound = table.boundKey(PeerKey(address)), bound != key {
                logRefusal("refused a message for \(hexDump(address)) sent with key \(String(decoding: key, as: UTF8.self)): the address belongs to another key")
                return false
            }
            verifiedAddress = address
            senderKey = key
            return true
        }
    }

    /// Logs a refusal, at most one line per second with the count of those not logged, so a
    /// hostile peer cannot flood the log.
    func logRefusal(_ text: @autoclosure () -> String) {
        let now = ContinuousClock.now
        if let last = lastRefusalLogged, last.duration(to: now) < .seconds(1) {
            refusalsNotLogged += 1
            return
        }
        let skipped = refusalsNotLogged
        refusalsNotLogged = 0
        lastRefusalLogged = now
        logger.warning("\(text())\(skipped > 0 ? " (and \(skipped) more refusals since the last such line)" : "")")
    }

    /// Forgets the last verified sender: after any change to which key a routing id is bound to.
    func forgetVerifiedSender() {
        verifiedAddress = []
    }

    // MARK: - Roles

    /// The roles of the key of the message being handled (every role without CURVE).
    var senderRoles: KeyRoles {
        guard let authorizedKeys else { return [.client, .agent, .status] }
        return authorizedKeys.roles(of: String(decoding: senderKey, as: UTF8.self))
    }

    /// The message's key for logs.
    var senderKeyText: String { senderKey.isEmpty ? "(no key)" : String(decoding: senderKey, as: UTF8.self) }

    /// Whether the sender's key has `role`; if not, logs the refusal and tells the sender why
    /// (`answer` sends the reason in the sender's framing).
    func senderMay(_ role: KeyRoles, _ action: String, answer: (String) -> Void) -> Bool {
        if senderRoles.contains(role) { return true }
        let reason = "the broker refused: key \(senderKeyText) may not \(action)"
        logRefusal(reason)
        answer(reason)
        return false
    }

    /// Binds an agent name to the sender's key on its first registration; a later registration
    /// of the name with another key is refused (`false`).
    func bindAgentName(_ name: String) -> Bool {
        guard authorizedKeys != nil else { return true }
        if let owner = agentNames[name] { return owner == senderKey }
        agentNames[name] = senderKey
        return true
    }

    // MARK: - Gateways

    /// What a client's SPAWN becomes for the agent: the client's request plus, with CURVE, a
    /// credential minted for this worker alone (the agent hands its secret to the worker) and
    /// the client's key (an agent may run each client key's workers as its own user).
    ///
    /// - Returns: The payload for the agent and the credential's public key (Z85 bytes, empty
    ///   without CURVE), or `nil` if no key pair could be made.
    func agentSpawnRequest(_ request: ControlPayload) -> (payload: [UInt8], credential: [UInt8])? {
        var forwarded = request
        forwarded["credential"] = nil
        forwarded["client_key"] = nil
        guard authorizedKeys != nil else { return (forwarded.encoded, []) }
        guard let pair = try? CurveKeyPair.generate() else { return nil }
        forwarded["credential"] = .string(pair.secretKey)
        forwarded["client_key"] = .string(String(decoding: senderKey, as: UTF8.self))
        return (forwarded.encoded, Array(pair.publicKey.utf8))
    }

    /// Why a client may not start another gateway, if its quota is used up: gateways per client
    /// key (per client process without CURVE).
    func quotaRefusal(for client: PeerAddress) -> String? {
        let quota = configuration.maxGatewaysPerClient
        guard quota > 0 else { return nil }
        let count: Int
        if authorizedKeys != nil {
            count = table.workers.values.reduce(0) { $0 + ($1.ownerKey == senderKey ? 1 : 0) }
        } else {
            count = table.clients[PeerKey(client)]?.workers.count ?? 0
        }
        guard count >= quota else { return nil }
        return "gateway quota exceeded: this client key already has \(count) gateways (at most \(quota))"
    }

    // MARK: - Status

    /// The status the sender may read: all of it for a status key (or without CURVE), a client's
    /// own gateways for a client key, the hosts and no gateway for an agent key (its health check
    /// looks for its own name), `nil` for any other key (a worker's credential).
    func statusForSender() -> ControlPayload? {
        let roles = senderRoles
        if roles.contains(.status) { return statusPayload() }
        if roles.contains(.client) {
            let key = senderKey
            return statusPayload(brokerWide: false) { $0 == key }
        }
        if roles.contains(.agent) { return statusPayload(brokerWide: false) { _ in false } }
        return nil
    }

    /// The answer to BROKER_STATUS: the status, or an `error` field if the key may not read it.
    func statusAnswer() -> [UInt8] {
        if let status = statusForSender() { return status.encoded }
        logRefusal("refused a status request from key \(senderKeyText): not a client, agent or status key")
        var refusal = ControlPayload()
        refusal["error"] = .string("the broker refused: key \(senderKeyText) may not read the status")
        return refusal.encoded
    }

    // MARK: - Reload

    /// Uses a new authorized-keys list: clients and agents whose key lost its role are dropped
    /// (their workers are killed), and names of agents whose key is no longer an agent key are
    /// free again (so an agent can move to a new key).
    func reload(_ keys: AuthorizedKeys) {
        guard authorizedKeys != nil else {
            logger.warning("ignored a key reload: this broker runs without CURVE")
            return
        }
        authorizedKeys = keys
        forgetVerifiedSender()
        func lost(_ key: [UInt8], _ role: KeyRoles) -> Bool {
            !keys.roles(of: String(decoding: key, as: UTF8.self)).contains(role)
        }
        agentNames = agentNames.filter { !lost($0.value, .agent) }
        let dropped = table.clients.values.filter { lost($0.key, .client) }.map(\.address)
            + table.agents.values.filter { lost($0.key, .agent) }.map(\.address)
        for address in dropped {
            // A dropped client is still connected: it is told that its gateways are gone.
            for worker in table.clients[PeerKey(address)]?.workers ?? [] {
                var lost = ControlPayload()
                lost["cause"] = "the broker dropped this client: its key is no longer a client key"
                sendToClient(address, about: worker, .peerLost, lost.encoded)
            }
            peerExpired(address)
        }
        logger.info("reloaded the authorized keys: \(keys.roles.count) keys; dropped \(dropped.count) peers whose key lost its role")
    }
}
