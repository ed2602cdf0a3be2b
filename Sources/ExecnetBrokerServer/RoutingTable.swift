// The broker's routing state as a pure struct: which clients, agents and workers are registered,
// which client owns which worker, on which agent it runs, their liveness, and the channels seen
// open per worker. No sockets, no clock reads: `now` is passed in, so it is tested with plain instants.

import ExecnetCore

/// What the routing table knows about a client.
struct ClientRecord: Sendable {
    let address: PeerAddress
    /// The CURVE key (Z85 bytes) it registered with; empty without CURVE.
    var key: [UInt8] = []
    var hostname: String
    var pid: Int64
    /// Workers this client owns.
    var workers: Set<PeerAddress> = []
}

/// What the routing table knows about a host agent.
struct AgentRecord: Sendable {
    let address: PeerAddress
    /// The CURVE key (Z85 bytes) it registered with; empty without CURVE.
    var key: [UInt8] = []
    var name: String
    var hostname: String
    var slots: Int
    /// Workers running on this agent's host.
    var workers: Set<PeerAddress> = []
    /// The host's load as last reported (checked and clamped), and when it came.
    var load: (report: LoadReport, received: ContinuousClock.Instant)?

    var freeSlots: Int { max(0, slots - workers.count) }
}

/// What the routing table knows about a worker.
struct WorkerRecord: Sendable {
    let address: PeerAddress
    /// The client that owns it.
    let owner: PeerAddress
    /// The agent that runs it.
    let agent: PeerAddress
    /// The owner's CURVE key (Z85 bytes); empty without CURVE.
    var ownerKey: [UInt8] = []
    /// The public key (Z85 bytes) the broker minted for this worker alone; empty without CURVE.
    var credential: [UInt8] = []
    let gatewayID: String
    var host: String
    var pid: Int64 = 0
    /// The worker said hello (it is connected).
    var connected = false
    /// Channels with traffic that neither side has closed yet.
    var openChannels: Set<Int32> = []
}

/// Registered peers and their relations. See the file comment.
struct RoutingTable: Sendable {
    private(set) var clients: [PeerKey: ClientRecord] = [:]
    private(set) var agents: [PeerKey: AgentRecord] = [:]
    private(set) var workers: [PeerKey: WorkerRecord] = [:]
    private(set) var liveness: [PeerKey: PeerLiveness] = [:]
    /// Worker credentials (Z85 public key) to the worker address they were minted for.
    private(set) var credentials: [String: PeerAddress] = [:]
    let settings: LivenessSettings
    /// How long a reserved worker may stay silent before its first message (see `reserveWorker`).
    static let workerStartAllowance: Duration = .seconds(10)

    init(settings: LivenessSettings) {
        self.settings = settings
    }

    /// What kind of peer an address is, if registered.
    enum Kind: Sendable, Equatable { case client, agent, worker }

    func kind(of address: PeerAddress) -> Kind? {
        let key = PeerKey(address)
        if workers[key] != nil { return .worker }
        if clients[key] != nil { return .client }
        if agents[key] != nil { return .agent }
        return nil
    }

    /// The worker registered at `address`, if any.
    func worker(_ address: PeerAddress) -> WorkerRecord? { workers[PeerKey(address)] }

    func isClient(_ address: PeerAddress) -> Bool { clients[PeerKey(address)] != nil }

    /// The agent registered at `address`, if any.
    func agent(_ address: PeerAddress) -> AgentRecord? { agents[PeerKey(address)] }

    // The forwarding hot path asks only what it needs, by a key hashed once, and copies no
    // record (a `WorkerRecord` holds six reference-counted fields).

    /// The owner of the worker at `key`, if it is a worker.
    func workerOwner(_ key: PeerKey) -> PeerAddress? { workers[key]?.owner }

    /// Whether `key` is a registered client.
    func isClient(_ key: PeerKey) -> Bool { clients[key] != nil }

    /// Whether the worker at `key` has `channelID` open.
    func isChannelOpen(worker key: PeerKey, _ channelID: Int32) -> Bool {
        workers[key]?.openChannels.contains(channelID) ?? false
    }

    /// The key a registered peer at `key` proved (Z85 bytes): a worker's minted credential, a
    /// client's or an agent's own key. `nil` for a peer not registered; empty without CURVE.
    func boundKey(_ key: PeerKey) -> [UInt8]? {
        workers[key]?.credential ?? clients[key]?.key ?? agents[key]?.key
    }

    // MARK: - Registration

    mutating func registerClient(_ address: PeerAddress, hostname: String, pid: Int64, key curveKey: [UInt8] = [],
                                 now: ContinuousClock.Instant) {
        let key = PeerKey(address)
        if clients[key] == nil {
            clients[key] = ClientRecord(address: address, key: curveKey, hostname: hostname, pid: pid)
        }
        liveness[key] = PeerLiveness(now: now, settings: settings)
    }

    mutating func registerAgent(_ address: PeerAddress, name: String, hostname: String, slots: Int, key curveKey: [UInt8] = [],
                                now: ContinuousClock.Instant) {
        let key = PeerKey(address)
        if var existing = agents[key] {
            existing.name = name
            existing.hostname = hostname
            existing.slots = slots
            agents[key] = existing
        } else {
            agents[key] = AgentRecord(address: address, key: curveKey, name: name, hostname: hostname, slots: slots)
        }
        liveness[key] = PeerLiveness(now: now, settings: settings)
    }

    /// Picks the agent for a new worker: the named host, or the agent with the most free slots.
    ///
    /// - Returns: The agent's address, or `nil` if none fits.
    func chooseAgent(host: String?) -> PeerAddress? {
        let candidates = agents.values.filter { agent in
            agent.freeSlots > 0 && (host == nil || agent.name == host || agent.hostname == host)
        }
        return candidates.max { ($0.freeSlots, $1.name) < ($1.freeSlots, $0.name) }?.address
    }

    /// Reserves a worker address for a client on an agent, before the process exists.
    ///
    /// - Returns: `false` if the address is taken.
    mutating func reserveWorker(
        _ address: PeerAddress, owner: PeerAddress, agent: PeerAddress, gatewayID: String, credential: [UInt8] = [],
        now: ContinuousClock.Instant
    ) -> Bool {
        let key = PeerKey(address), ownerKey = PeerKey(owner), agentKey = PeerKey(agent)
        guard workers[key] == nil, let client = clients[ownerKey], let agentRecord = agents[agentKey] else { return false }
        workers[key] = WorkerRecord(address: address, owner: owner, agent: agent, ownerKey: client.key, credential: credential,
                                    gatewayID: gatewayID, host: agentRecord.name)
        if !credential.isEmpty { credentials[String(decoding: credential, as: UTF8.self)] = address }
        clients[ownerKey]!.workers.insert(address)
        agents[agentKey]!.workers.insert(address)
        // A starting worker gets a start-up allowance before its silence counts: its process may
        // take longer than a liveness window to start on a loaded host. A worker that dies meanwhile
        // is reported by its agent (pidfd), and the client bounds the start with its own timeout.
        liveness[key] = PeerLiveness(starting: now, settings: settings, allowance: Self.workerStartAllowance)
        return true
    }

    mutating func workerConnected(_ address: PeerAddress, pid: Int64) {
        let key = PeerKey(address)
        workers[key]?.connected = true
        if pid != 0 { workers[key]?.pid = pid }
    }

    mutating func workerSpawned(_ address: PeerAddress, pid: Int64) {
        workers[PeerKey(address)]?.pid = pid
    }

    /// Keeps an agent's (checked) load report, replacing the previous one.
    mutating func recordLoad(_ report: LoadReport, agent address: PeerAddress, now: ContinuousClock.Instant) {
        agents[PeerKey(address)]?.load = (report, now)
    }

    // MARK: - Removal (one place unlinks from every index)

    /// Removes a worker from every index.
    @discardableResult
    mutating func removeWorker(_ address: PeerAddress) -> WorkerRecord? {
        let key = PeerKey(address)
        guard let record = workers.removeValue(forKey: key) else { return nil }
        if !record.credential.isEmpty { credentials[String(decoding: record.credential, as: UTF8.self)] = nil }
        clients[PeerKey(record.owner)]?.workers.remove(address)
        agents[PeerKey(record.agent)]?.workers.remove(address)
        liveness[key] = nil
        return record
    }

    /// Removes a client; returns it and the workers it owned (still registered, to be killed).
    mutating func removeClient(_ address: PeerAddress) -> (ClientRecord, [WorkerRecord])? {
        let key = PeerKey(address)
        guard let record = clients.removeValue(forKey: key) else { return nil }
        liveness[key] = nil
        return (record, record.workers.compactMap { workers[PeerKey($0)] })
    }

    /// Removes an agent and every worker on it.
    mutating func removeAgent(_ address: PeerAddress) -> (AgentRecord, [WorkerRecord])? {
        let key = PeerKey(address)
        guard let record = agents.removeValue(forKey: key) else { return nil }
        liveness[key] = nil
        let lost = record.workers.compactMap { removeWorker($0) }
        return (record, lost)
    }

    // MARK: - Liveness

    /// Any traffic from a peer counts as a sign of life.
    mutating func heard(from address: PeerAddress, now: ContinuousClock.Instant) {
        liveness[PeerKey(address)]?.heard(now: now, settings: settings)
    }

    mutating func sent(to address: PeerAddress, now: ContinuousClock.Instant) {
        liveness[PeerKey(address)]?.lastSent = now
    }

    /// Peers silent past their expiry.
    func expiredPeers(now: ContinuousClock.Instant) -> [PeerAddress] {
        liveness.filter { $0.value.isExpired(now: now) }.map(\.key.bytes)
    }

    /// Peers we have sent nothing to for an interval.
    func peersNeedingHeartbeat(now: ContinuousClock.Instant) -> [PeerAddress] {
        liveness.filter { $0.value.needsHeartbeat(now: now, settings: settings) }.map(\.key.bytes)
    }

    // MARK: - Channels (for status)

    /// Notes a channel message between a worker and its client: a channel is open from its first
    /// message until either side closes it.
    mutating func noteChannelMessage(worker address: PeerAddress, channelID: Int32, type: MessageType) {
        let key = PeerKey(address)
        guard channelID != 0, workers[key] != nil else { return }
        switch type {
        case .gateway(.exec), .gateway(.data): workers[key]!.openChannels.insert(channelID)
        case .gateway(.close), .gateway(.closeError): workers[key]!.openChannels.remove(channelID)
        default: break
        }
    }
}
