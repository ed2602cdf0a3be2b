// The broker's handlers, one per kind of peer (mdbroker's s_broker_client_msg/s_broker_worker_msg):
// workers' frames go to their owner; clients' frames go to their workers or are broker requests;
// agents report spawns and exits; strangers may register. A malformed message is logged and dropped.

import ExecnetCore
import ExecnetValue
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension Broker {
    // MARK: - Workers: [channel][type][payload]

    func handleWorker(_ address: PeerAddress, _ body: ArraySlice<[UInt8]>) {
        guard let record = table.worker(address) else { return }
        let message: WireMessage
        do {
            message = try WireMessage.parse(body)
        } catch {
            rogue.warning("dropped a malformed message from a worker", "\(record.gatewayID): \(error)")
            return
        }
        switch message.type {
        case .heartbeat:
            return
        case .hello:
            table.workerConnected(address, pid: ControlPayload(decoding: message.payload)?.int("pid") ?? 0)
        case .data, .close, .closeError, .credit:
            table.noteChannelMessage(worker: address, channelID: message.channelID, type: message.type)
        case .bye:
            break
        default:
            rogue.warning("dropped a message that is not a worker message", "\(message.type) from \(record.gatewayID)")
            return
        }
        if !send(message, envelope: address, to: record.owner) {
            logger.debug("the owner of \(record.gatewayID) is not connected; dropped \(message.type)")
        }
    }

    // MARK: - Clients: [worker address or empty][channel][type][payload]

    func handleClient(_ client: PeerAddress, _ body: ArraySlice<[UInt8]>) {
        guard body.count == 4 else {
            rogue.warning("dropped a client message without 4 frames", "\(body.count) frames")
            return
        }
        let target = body[body.startIndex]
        let message: WireMessage
        do {
            message = try WireMessage.parse(body.dropFirst())
        } catch {
            rogue.warning("dropped a malformed client message", "\(error)")
            return
        }
        if target.isEmpty {
            handleClientRequest(client, message)
            return
        }
        guard let worker = table.worker(target), worker.owner == client else {
            var lost = ControlPayload()
            lost["cause"] = "the broker knows no gateway at this address (it may have restarted)"
            lost["heartbeat"] = true
            sendToClient(client, about: target, .peerLost, lost.encoded)
            return
        }
        switch message.type {
        case .kill:
            var order = ControlPayload(decoding: message.payload) ?? ControlPayload()
            order["address"] = .bytes(target)
            sendToPeer(worker.agent, .kill, order.encoded)
        case .exec, .data, .close, .closeError, .credit, .status, .terminate, .farewell:
            table.noteChannelMessage(worker: target, channelID: message.channelID, type: message.type)
            if !send(message, to: target) {
                logger.debug("worker \(worker.gatewayID) is not connected; dropped \(message.type)")
            }
        default:
            rogue.warning("dropped a client message not for a worker", "\(message.type)")
        }
    }

    private func handleClientRequest(_ client: PeerAddress, _ message: WireMessage) {
        switch message.type {
        case .heartbeat:
            return
        case .clientHello:
            welcome(client: client, message)
        case .spawn:
            spawn(for: client, message.payload)
        case .brokerStatus:
            sendToClient(client, about: [], channelID: message.channelID, .brokerStatus, statusAnswer())
        default:
            rogue.warning("dropped a client message not for the broker", "\(message.type)")
        }
    }

    private func spawn(for client: PeerAddress, _ payload: [UInt8]) {
        let request: ControlPayload, address: PeerAddress
        switch Self.checkSpawn(payload) {
        case .success(let checked):
            (request, address) = checked
        case .failure(let refusal):
            // Answered, so the client's gateway fails at once instead of waiting for its timeout.
            rogue.warning("refused a malformed SPAWN request", refusal.reason)
            sendToClient(client, about: refusal.address, .spawnFailed, encodePlain(.string("malformed SPAWN: \(refusal.reason)")))
            return
        }
        let host = request.string("host")
        func fail(_ reason: String) {
            sendToClient(client, about: address, .spawnFailed, encodePlain(.string(reason)))
        }
        if shuttingDown { return fail("the broker is shutting down") }
        if !isUnderMemoryCap { return fail(memoryCapReason) }
        guard table.worker(address) == nil else { return fail("the gateway address is already in use") }
        if let refusal = quotaRefusal(for: client) { return fail(refusal) }
        guard let agent = table.chooseAgent(host: host) else {
            if let host { return fail("no host agent named '\(host)' with a free slot") }
            return fail("no host agent with a free slot (\(table.agents.count) agents registered)")
        }
        let gatewayID = request.string("gateway") ?? "gw"
        guard let forwarded = agentSpawnRequest(request) else { return fail("the broker could not make a worker credential") }
        guard table.reserveWorker(address, owner: client, agent: agent, gatewayID: gatewayID, credential: forwarded.credential,
                                  now: .now)
        else {
            return fail("the gateway could not be reserved")
        }
        forgetVerifiedSender()
        sendToPeer(agent, .spawn, forwarded.payload)
    }

    /// Why a SPAWN is malformed, and the address to answer about (empty if it has none).
    struct SpawnRefusal: Error {
        var reason: String
        var address: PeerAddress
    }

    /// Checks a SPAWN's shape: a dict whose `address` is 1 to 255 bytes not starting with a zero
    /// byte (a routing id), and whose optional fields have their kinds (docs/PROTOCOL.md).
    static func checkSpawn(_ payload: [UInt8]) -> Result<(ControlPayload, PeerAddress), SpawnRefusal> {
        guard let request = ControlPayload(decoding: payload) else {
            return .failure(SpawnRefusal(reason: "the payload is not a dict", address: []))
        }
        guard let address = request.bytes("address"), !address.isEmpty else {
            return .failure(SpawnRefusal(reason: "'address' must be non-empty bytes", address: []))
        }
        guard address.count <= 255, address[0] != 0 else {
            return .failure(SpawnRefusal(reason: "'address' must be 1 to 255 bytes not starting with a zero byte", address: address))
        }
        for key in ["gateway", "host", "chdir", "worker"] where request[key] != nil && request.string(key) == nil {
            return .failure(SpawnRefusal(reason: "'\(key)' must be text", address: address))
        }
        if request["nice"] != nil && request.int("nice") == nil {
            return .failure(SpawnRefusal(reason: "'nice' must be an int", address: address))
        }
        if let env = request["env"], env.dictValue == nil {
            return .failure(SpawnRefusal(reason: "'env' must be a dict", address: address))
        }
        return .success((request, address))
    }

    private func welcome(client: PeerAddress, _ message: WireMessage) {
        let hello = ControlPayload(decoding: message.payload)
        guard let version = hello?.int("protocol"), version == wireProtocolVersion else {
            let theirs = hello?.int("protocol").map(String.init) ?? "none"
            sendToClient(client, about: [], .spawnFailed,
                         encodePlain(.string("protocol version mismatch: client \(theirs), broker \(wireProtocolVersion)")))
            return
        }
        if shuttingDown { return }
        guard senderMay(.client, "act as a client", answer: { sendToClient(client, about: [], .spawnFailed, encodePlain(.string($0))) })
        else { return }
        table.registerClient(client, hostname: hello?.string("hostname") ?? "", pid: hello?.int("pid") ?? 0, key: senderKey, now: .now)
        sendToClient(client, about: [], .welcome, welcomePayload().encoded)
    }

    func welcomePayload() -> ControlPayload {
        var payload = ControlPayload()
        payload["protocol"] = .int(wireProtocolVersion)
        payload["heartbeat_ms"] = .int(Int64(configuration.liveness.interval.clampedMilliseconds))
        payload["liveness"] = .int(Int64(configuration.liveness.liveness))
        payload["max_message_size"] = .int(Int64(configuration.maxMessageSize))
        return payload
    }

    // MARK: - Agents: [channel][type][payload]

    func handleAgent(_ agent: PeerAddress, _ body: ArraySlice<[UInt8]>) {
        let message: WireMessage
        do {
            message = try WireMessage.parse(body)
        } catch {
            rogue.warning("dropped a malformed message from an agent", "\(error)")
            return
        }
        switch message.type {
        case .heartbeat:
            return
        case .agentHello:
            registerAgent(agent, message)
        case .loadReport:
            handleLoadReport(agent, message)
        case .spawned:
            guard let report = ControlPayload(decoding: message.payload), let address = report.bytes("address"),
                let worker = table.worker(address), worker.agent == agent
            else { return }
            table.workerSpawned(address, pid: report.int("pid") ?? 0)
            sendToClient(worker.owner, about: address, .spawned, message.payload)
        case .spawnFailed:
            guard let report = ControlPayload(decoding: message.payload), let address = report.bytes("address"),
                let worker = table.worker(address), worker.agent == agent
            else { return }
            table.removeWorker(address)
            let reason = report.string("reason") ?? "the agent could not start the worker"
            sendToClient(worker.owner, about: address, .spawnFailed, encodePlain(.string(reason)))
        case .workerExited:
            guard let report = ControlPayload(decoding: message.payload), let address = report.bytes("address"),
                let worker = table.worker(address), worker.agent == agent
            else { return }
            table.removeWorker(address)
            var lost = report
            let cause = "worker of gateway \(worker.gatewayID) on host \(worker.host) \(report.workerExit.map { "\($0)" } ?? "exited")"
            lost["cause"] = .string(cause)
            if report.workerExit != .exited(0) {
                recordDeath(worker, client: clientLabel(key: worker.ownerKey, owner: worker.owner), cause: cause,
                            exit: report.workerExit, stderr: Self.reportedStderr(report))
            }
            sendToClient(worker.owner, about: address, .peerLost, lost.encoded)
            checkDrained()
        default:
            rogue.warning("dropped an agent message not for the broker", "\(message.type)")
        }
    }

    private func registerAgent(_ agent: PeerAddress, _ message: WireMessage) {
        let hello = ControlPayload(decoding: message.payload)
        guard let version = hello?.int("protocol"), version == wireProtocolVersion else {
            logger.warning("refused an agent speaking protocol \(hello?.int("protocol").map(String.init) ?? "none")")
            return
        }
        if shuttingDown { return }
        func refuse(_ reason: String) {
            var refusal = ControlPayload()
            refusal["reason"] = .string(reason)
            sendToPeer(agent, .spawnFailed, refusal.encoded)
        }
        guard senderMay(.agent, "register as an agent", answer: refuse) else { return }
        let name = hello?.string("name") ?? String(decoding: agent, as: UTF8.self)
        guard bindAgentName(name) else {
            let reason = "the broker refused: agent name '\(name)' belongs to another key (key \(senderKeyText) may not use it)"
            logRefusal(reason)
            return refuse(reason)
        }
        table.registerAgent(agent, name: name, hostname: hello?.string("hostname") ?? name,
                            slots: Int(hello?.int("slots") ?? 1), key: senderKey, now: .now)
        logger.info("agent \(name) registered with \(hello?.int("slots") ?? 1) slots", metadata: ["host": "\(name)"])
        sendToPeer(agent, .welcome, agentWelcomePayload().encoded)
    }

    // MARK: - Strangers

    /// A peer the broker does not know may register (client or agent) or ask for status; anything
    /// else is told that it is unknown, so it can register again after a broker restart.
    func handleStranger(_ address: PeerAddress, _ body: ArraySlice<[UInt8]>) {
        if body.count == 4, body[body.startIndex].isEmpty, let message = try? WireMessage.parse(body.dropFirst()) {
            switch message.type {
            case .clientHello:
                welcome(client: address, message)
            case .brokerStatus:
                send(WireMessage(channelID: message.channelID, type: .brokerStatus, payload: statusAnswer()), envelope: [], to: address)
            default:
                sendToClient(address, about: [], .unknownPeer)
            }
            return
        }
        if body.count == 4 {
            // A client the broker does not know (it restarted) wrote to a gateway: tell the client
            // that it is the one unknown, so it registers again and learns that its gateways are
            // gone. Answering about the gateway alone would leave the client believing it is still
            // registered, and its next SPAWN would fail for that reason.
            sendToClient(address, about: [], .unknownPeer)
            return
        }
        if body.count == 3, let message = try? WireMessage.parse(body) {
            if message.type == .agentHello {
                registerAgent(address, message)
            } else {
                sendToPeer(address, .unknownPeer)
            }
            return
        }
        rogue.warning("dropped a message from an unknown peer", "\(hexDump(address)) with \(body.count) frames")
    }

    // MARK: - Death

    /// A peer went silent past its expiry: one place decides what its death means.
    func peerExpired(_ address: PeerAddress) {
        switch table.kind(of: address) {
        case .worker:
            guard let worker = table.removeWorker(address) else { return }
            logger.warning("worker of \(worker.gatewayID) on \(worker.host) stopped answering heartbeats",
                           metadata: ["gateway": "\(worker.gatewayID)", "host": "\(worker.host)",
                                      "client": "\(keyFingerprint(worker.ownerKey))"])
            var lost = ControlPayload()
            lost["cause"] = .string("worker of gateway \(worker.gatewayID) on host \(worker.host) stopped answering heartbeats")
            lost["heartbeat"] = true
            recordDeath(worker, client: clientLabel(key: worker.ownerKey, owner: worker.owner),
                        cause: "worker of gateway \(worker.gatewayID) on host \(worker.host) stopped answering heartbeats", exit: .heartbeatLost)
            sendToClient(worker.owner, about: address, .peerLost, lost.encoded)
            var order = ControlPayload()
            order["address"] = .bytes(address)
            order["signal"] = .int(Int64(SIGKILL))
            sendToPeer(worker.agent, .kill, order.encoded)
        case .client:
            guard let (client, workers) = table.removeClient(address) else { return }
            logger.warning("client \(client.hostname):\(client.pid) stopped answering heartbeats; killing its \(workers.count) workers",
                           metadata: ["client": "\(keyFingerprint(client.key))"])
            let label = client.key.isEmpty ? Self.clientLabel(hostname: client.hostname, pid: client.pid)
                : clientLabel(key: client.key, owner: address)
            for worker in workers {
                table.removeWorker(worker.address)
                recordDeath(worker, client: label, cause: "killed: its client \(label) stopped answering heartbeats", exit: nil)
                var order = ControlPayload()
                order["address"] = .bytes(worker.address)
                order["signal"] = .int(Int64(SIGKILL))
                sendToPeer(worker.agent, .kill, order.encoded)
            }
        case .agent:
            guard let (agent, lost) = table.removeAgent(address) else { return }
            logger.warning("agent \(agent.name) stopped answering heartbeats; \(lost.count) workers lost",
                           metadata: ["host": "\(agent.name)"])
            for worker in lost {
                recordDeath(worker, client: clientLabel(key: worker.ownerKey, owner: worker.owner),
                            cause: "host agent \(agent.name) stopped answering heartbeats", exit: .heartbeatLost)
                var payload = ControlPayload()
                payload["cause"] = .string("host agent \(agent.name) stopped answering heartbeats (gateway \(worker.gatewayID))")
                payload["heartbeat"] = true
                sendToClient(worker.owner, about: worker.address, .peerLost, payload.encoded)
            }
        case nil:
            break
        }
        outbox?.forget(address)
        checkDrained()
    }

    // MARK: - Status

    /// The status table; `include` picks the gateways shown (and counted).
    func statusPayload(brokerWide: Bool = true, visible: ([UInt8]) -> Bool = { _ in true }) -> ControlPayload {
        let include: (WorkerRecord) -> Bool = { visible($0.ownerKey) }
        let shown = table.workers.values.filter(include)
        let now = ContinuousClock.now
        var status = ControlPayload()
        status["pid"] = .int(Int64(getpid()))
        status["uptime_s"] = .float(started.duration(to: .now).seconds)
        status["endpoints"] = .list(shared.endpoints.withLock { $0 }.map { .string($0) })
        status["hosts"] = .list(table.agents.values.sorted { $0.name < $1.name }.map { agent in
            var host: ValueDictionary = [
                "name": .string(agent.name), "hostname": .string(agent.hostname),
                "slots": .int(Int64(agent.slots)), "workers": .int(Int64(agent.workers.count)),
            ]
            if let load = hostLoadValue(agent, now: now) { host[.string("load")] = load }
            return .dict(host)
        })
        status["clients"] = .int(Int64(table.clients.count))
        status["gateways"] = .list(shown.sorted { $0.gatewayID < $1.gatewayID }.map { worker in
            .dict([
                "gateway": .string(worker.gatewayID), "host": .string(worker.host), "pid": .int(worker.pid),
                "connected": .bool(worker.connected), "channels": .int(Int64(worker.openChannels.count)),
                "client": .string(clientLabel(key: worker.ownerKey, owner: worker.owner)),
            ])
        })
        status["workers"] = .int(Int64(shown.count))
        status["channels"] = .int(Int64(shown.reduce(0) { $0 + $1.openChannels.count }))
        status["messages_in"] = .int(Int64(messagesIn))
        status["messages_out"] = .int(Int64(messagesOut))
        status["rate_in"] = .float(rateIn)
        status["rate_out"] = .float(rateOut)
        status["data_bytes"] = .int(Int64(flow.dataBytes))
        status["recent_deaths"] = recentDeathsStatus(now: now, visible: visible)
        status["credit_stalls"] = creditStallsStatus(brokerWide: brokerWide, include: include)
        if brokerWide {
            // The broker's memory against its cap: for a status key (or a broker without CURVE) only.
            status["in_flight_bytes"] = .int(Int64(flow.inFlightBytes))
            status["queued_bytes"] = .int(Int64(outbox?.queuedBytes ?? 0))
            status["memory_cap_bytes"] = .int(Int64(configuration.limits.maxInFlightBytes))
        }
        return status
    }
}
