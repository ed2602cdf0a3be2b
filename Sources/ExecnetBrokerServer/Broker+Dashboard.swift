// What the broker remembers for its status and dashboard beyond the routing table: the last
// worker deaths (a bounded ring: gateway, host, client label, cause, signal or exit status, the
// last stderr lines its agent saw), the label a client is shown by (its key's comment or
// fingerprint, never the key), and the channels whose sender is out of credit. While someone
// reads the dashboard, the liveness tick publishes the whole status for it (BrokerServer.status).
// Everything here runs on the broker's I/O thread.

import ExecnetCore
import ExecnetValue

/// The status published for readers in the process (the dashboard), and until when to publish it.
struct PublishedStatus: Sendable {
    /// The tick publishes while now is before this (`nil`: nobody has read).
    var readUntil: ContinuousClock.Instant?
    /// The last status published.
    var status: BrokerStatus?
}

/// One worker that ended other than by a clean exit: what the status's `recent_deaths` shows.
struct DeathRecord {
    let gatewayID: String
    let host: String
    /// The owner's key (Z85 bytes; empty without CURVE): a client key sees its own deaths only.
    let ownerKey: [UInt8]
    let client: String
    let cause: String
    let exit: WorkerExit?
    /// The worker's last stderr lines as its agent reported them, oldest first.
    let stderr: [String]
    let at: ContinuousClock.Instant
}

extension Broker {
    /// Deaths kept for the status: the newest this many.
    static var recentDeathsKept: Int { 50 }
    /// Stderr lines kept per death, and characters per line (the agent's report is not trusted).
    static var deathStderrLines: Int { 10 }
    static var deathStderrLineLength: Int { 500 }
    /// Stalled channels listed in a status (the count covers all of them).
    static var stalledChannelsListed: Int { 100 }

    /// Remembers a death; the oldest is forgotten past ``recentDeathsKept``.
    func recordDeath(_ worker: WorkerRecord, client: String, cause: String, exit: WorkerExit?, stderr: [String] = []) {
        if recentDeaths.count >= Self.recentDeathsKept { recentDeaths.removeFirst(recentDeaths.count - Self.recentDeathsKept + 1) }
        recentDeaths.append(DeathRecord(
            gatewayID: worker.gatewayID, host: worker.host, ownerKey: worker.ownerKey, client: client, cause: cause,
            exit: exit, stderr: stderr, at: .now))
    }

    /// The stderr lines of a WORKER_EXITED report (`stderr`: a list of strings), bounded.
    static func reportedStderr(_ report: ControlPayload) -> [String] {
        guard case .list(let items)? = report["stderr"] else { return [] }
        return items.suffix(deathStderrLines).compactMap { item in
            guard case .string(let line) = item else { return nil }
            return String(line.prefix(deathStderrLineLength))
        }
    }

    /// How a client is shown: its key's comment in the authorized-keys file, else the key's
    /// fingerprint; without CURVE, the client's hostname and pid.
    func clientLabel(key: [UInt8], owner: PeerAddress) -> String {
        if !key.isEmpty {
            if let comment = authorizedKeys?.comments[String(decoding: key, as: UTF8.self)], !comment.isEmpty {
                return String(comment.prefix(64))
            }
            return keyFingerprint(key)
        }
        guard let client = table.clients[PeerKey(owner)] else { return "anonymous" }
        return Self.clientLabel(hostname: client.hostname, pid: client.pid)
    }

    /// A client without a key, by what its hello said (bounded: the hostname is the peer's text).
    static func clientLabel(hostname: String, pid: Int64) -> String {
        "\(hostname.isEmpty ? "client" : String(hostname.prefix(64))) pid \(pid)"
    }

    // MARK: - Status fields

    /// `recent_deaths`, newest first, of the owners `visible` accepts.
    func recentDeathsStatus(now: ContinuousClock.Instant, visible: ([UInt8]) -> Bool) -> Value {
        .list(recentDeaths.reversed().filter { visible($0.ownerKey) }.map { death in
            var fields: ValueDictionary = [
                "gateway": .string(death.gatewayID), "host": .string(death.host), "client": .string(death.client),
                "cause": .string(death.cause), "seconds_ago": .float(death.at.duration(to: now).seconds),
            ]
            switch death.exit {
            case .signaled(let signal)?: fields["signal"] = .int(Int64(signal))
            case .exited(let status)?: fields["exit_status"] = .int(Int64(status))
            case .heartbeatLost?, nil: break
            }
            if !death.stderr.isEmpty { fields["stderr"] = .list(death.stderr.map { .string($0) }) }
            return .dict(fields)
        })
    }

    /// `credit_stalls`: the channels (of gateways `include` shows) whose sender has used all its
    /// credit and waits for a grant, and, broker-wide, how many times a sender ran out since start.
    func creditStallsStatus(brokerWide: Bool, include: (WorkerRecord) -> Bool) -> Value {
        var listed: [Value] = []
        var blocked = 0
        for (key, flow) in flow.channels where flow.toWorker.isExhausted || flow.toClient.isExhausted {
            guard let worker = table.workers[key.worker], include(worker) else { continue }
            for (exhausted, direction) in [(flow.toWorker.isExhausted, "to_worker"), (flow.toClient.isExhausted, "to_client")]
            where exhausted {
                blocked += 1
                if listed.count < Self.stalledChannelsListed {
                    listed.append(.dict([
                        "gateway": .string(worker.gatewayID), "channel": .int(Int64(key.channelID)),
                        "direction": .string(direction),
                    ]))
                }
            }
        }
        var fields: ValueDictionary = ["blocked": .int(Int64(blocked)), "channels": .list(listed)]
        if brokerWide { fields["started"] = .int(Int64(flow.stallsStarted)) }
        return .dict(fields)
    }
}

extension Broker {
    // MARK: - Publishing

    /// How long after the last read the tick keeps publishing the status.
    static var statusReadersLinger: Duration { .seconds(5) }

    /// Publishes the full status for ``BrokerServer/status()`` if it was read lately: nothing is
    /// built while nobody watches.
    func publishStatusIfRead(now: ContinuousClock.Instant) {
        let reading = shared.published.withLock { state in
            guard let until = state.readUntil, now < until else {
                // A stale status is not kept for the next reader.
                state.status = nil
                return false
            }
            return true
        }
        guard reading else { return }
        let status = try? BrokerStatus(.dict(statusPayload().fields))
        shared.published.withLock { $0.status = status }
    }
}
