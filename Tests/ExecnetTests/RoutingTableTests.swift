// The broker's routing table with plain instants: registration, lookup, the links between
// clients, agents and workers, removal from every index, expiry after missed heartbeats,
// heartbeat duty, and registering again. No sockets, no clock reads, no sleeps.

@testable import ExecnetBrokerServer
@testable import ExecnetCore
import Testing

@Suite struct RoutingTableTests {
    static let settings = LivenessSettings(interval: .seconds(1), liveness: 3)
    let t0 = ContinuousClock.now
    let client: PeerAddress = Array("c.1".utf8)
    let agent: PeerAddress = Array("a.1".utf8)
    let worker: PeerAddress = Array("w.1".utf8)

    func at(_ seconds: Double) -> ContinuousClock.Instant { t0.advanced(by: .seconds(seconds)) }

    /// A client, an agent with two slots, and one worker reserved for the client on it.
    func populated() -> RoutingTable {
        var table = RoutingTable(settings: Self.settings)
        table.registerClient(client, hostname: "h", pid: 1, now: t0)
        table.registerAgent(agent, name: "box", hostname: "box.local", slots: 2, now: t0)
        let reserved = table.reserveWorker(worker, owner: client, agent: agent, gatewayID: "gw1", now: t0)
        #expect(reserved)
        return table
    }

    @Test func registrationAndLookup() {
        let table = populated()
        #expect(table.kind(of: client) == .client)
        #expect(table.kind(of: agent) == .agent)
        #expect(table.kind(of: worker) == .worker)
        #expect(table.kind(of: Array("nobody".utf8)) == nil)
        #expect(table.isClient(client) && !table.isClient(worker))
        #expect(table.workerOwner(PeerKey(worker)) == client)
        #expect(table.workerOwner(PeerKey(client)) == nil)
        let record = table.worker(worker)
        #expect(record?.gatewayID == "gw1" && record?.agent == agent && record?.host == "box" && record?.connected == false)
        #expect(table.clients[PeerKey(client)]?.workers == [worker])
        #expect(table.agents[PeerKey(agent)]?.workers == [worker])
        #expect(table.agents[PeerKey(agent)]?.freeSlots == 1)
    }

    @Test func aWorkerIsReservedOnlyForARegisteredClientOnARegisteredAgentAtAFreeAddress() {
        var table = populated()
        let other: PeerAddress = Array("w.2".utf8)
        let again = table.reserveWorker(worker, owner: client, agent: agent, gatewayID: "again", now: t0)
        let forAStranger = table.reserveWorker(other, owner: Array("stranger".utf8), agent: agent, gatewayID: "x", now: t0)
        let onNoAgent = table.reserveWorker(other, owner: client, agent: Array("no-agent".utf8), gatewayID: "x", now: t0)
        #expect(!again && !forAStranger && !onNoAgent)
        #expect(table.worker(other) == nil)
        #expect(table.worker(worker)?.gatewayID == "gw1")
    }

    @Test func agentChoiceByHostAndFreeSlots() {
        var table = populated()
        let small: PeerAddress = Array("a.2".utf8)
        table.registerAgent(small, name: "tiny", hostname: "tiny.local", slots: 1, now: t0)
        // Both have one free slot: ties go by name, the smaller first ("box").
        #expect(table.chooseAgent(host: nil) == agent)
        #expect(table.chooseAgent(host: "tiny") == small)
        #expect(table.chooseAgent(host: "tiny.local") == small)
        #expect(table.chooseAgent(host: "elsewhere") == nil)
        let second = table.reserveWorker(Array("w.2".utf8), owner: client, agent: agent, gatewayID: "gw2", now: t0)
        #expect(second)
        // The box is full now.
        #expect(table.chooseAgent(host: nil) == small)
        #expect(table.chooseAgent(host: "box") == nil)
    }

    @Test func workerStartAndChannels() {
        var table = populated()
        table.workerSpawned(worker, pid: 42)
        #expect(table.worker(worker)?.pid == 42 && table.worker(worker)?.connected == false)
        table.workerConnected(worker, pid: 0)
        #expect(table.worker(worker)?.pid == 42 && table.worker(worker)?.connected == true)
        table.noteChannelMessage(worker: worker, channelID: 1, type: .exec)
        table.noteChannelMessage(worker: worker, channelID: 2, type: .data)
        table.noteChannelMessage(worker: worker, channelID: 0, type: .data)
        table.noteChannelMessage(worker: worker, channelID: 3, type: .credit)
        #expect(table.isChannelOpen(worker: PeerKey(worker), 1) && table.isChannelOpen(worker: PeerKey(worker), 2))
        #expect(!table.isChannelOpen(worker: PeerKey(worker), 0) && !table.isChannelOpen(worker: PeerKey(worker), 3))
        table.noteChannelMessage(worker: worker, channelID: 1, type: .close)
        table.noteChannelMessage(worker: worker, channelID: 2, type: .closeError)
        #expect(table.worker(worker)?.openChannels.isEmpty == true)
    }

    @Test func removalUnlinksFromEveryIndex() throws {
        var table = populated()
        let removed = table.removeWorker(worker)
        let removedAgain = table.removeWorker(worker)
        #expect(removed?.address == worker && removedAgain == nil)
        #expect(table.kind(of: worker) == nil)
        #expect(table.clients[PeerKey(client)]?.workers.isEmpty == true)
        #expect(table.agents[PeerKey(agent)]?.freeSlots == 2)
        #expect(table.liveness[PeerKey(worker)] == nil)

        // A client goes with its record; its workers are returned, still registered, to be killed.
        table = populated()
        let removedClient = table.removeClient(client)
        let (record, owned) = try #require(removedClient)
        #expect(record.address == client && owned.map(\.address) == [worker])
        #expect(table.kind(of: client) == nil && table.kind(of: worker) == .worker)

        // An agent takes every worker on it.
        table = populated()
        let removedAgent = table.removeAgent(agent)
        let (agentRecord, lost) = try #require(removedAgent)
        #expect(agentRecord.name == "box" && lost.map(\.address) == [worker])
        #expect(table.kind(of: worker) == nil && table.clients[PeerKey(client)]?.workers.isEmpty == true)
    }

    @Test func expiryAfterMissedHeartbeatsAndHeartbeatDuty() {
        var table = populated()
        // Expiry is interval × liveness = 3 s after the last sign of life.
        #expect(table.expiredPeers(now: at(2.9)).isEmpty)
        #expect(Set(table.expiredPeers(now: at(3))) == [client, agent, worker])
        // Traffic from the client at 2 s keeps it alive until 5 s; the others expire at 3 s.
        table.heard(from: client, now: at(2))
        #expect(Set(table.expiredPeers(now: at(3))) == [agent, worker])
        #expect(table.expiredPeers(now: at(4.9)).contains(client) == false)
        #expect(table.expiredPeers(now: at(5)).contains(client))
        // Heartbeat duty: owed to a peer we sent nothing to for an interval.
        #expect(table.peersNeedingHeartbeat(now: at(0.5)).isEmpty)
        table.sent(to: agent, now: at(0.5))
        #expect(Set(table.peersNeedingHeartbeat(now: at(1))) == [client, worker])
        #expect(Set(table.peersNeedingHeartbeat(now: at(1.5))) == [client, agent, worker])
        // Signs of life from strangers change nothing.
        table.heard(from: Array("stranger".utf8), now: at(1))
        #expect(table.liveness.count == 3)
    }

    @Test func registeringAgainRefreshesLivenessAndKeepsRelations() {
        var table = populated()
        #expect(table.expiredPeers(now: at(3)).contains(client))
        // A client that registers again (after a pause) is alive again and keeps its workers.
        table.registerClient(client, hostname: "other", pid: 2, now: at(3))
        #expect(!table.expiredPeers(now: at(5.9)).contains(client))
        #expect(table.expiredPeers(now: at(6)).contains(client))
        #expect(table.clients[PeerKey(client)]?.workers == [worker])
        #expect(table.clients[PeerKey(client)]?.pid == 1)
        // An agent that registers again takes its new name and slots, and keeps its workers.
        table.registerAgent(agent, name: "box2", hostname: "box2.local", slots: 4, now: at(3))
        #expect(table.agents[PeerKey(agent)]?.name == "box2" && table.agents[PeerKey(agent)]?.freeSlots == 3)
        #expect(!table.expiredPeers(now: at(5.9)).contains(agent))
        // A removed client registers afresh, with nothing.
        _ = table.removeClient(client)
        table.registerClient(client, hostname: "h", pid: 3, now: at(10))
        #expect(table.clients[PeerKey(client)]?.workers.isEmpty == true && table.clients[PeerKey(client)]?.pid == 3)
    }
}

/// One peer's liveness arithmetic, with plain instants.
@Suite struct PeerLivenessTests {
    let t0 = ContinuousClock.now
    let settings = LivenessSettings(interval: .milliseconds(200), liveness: 5)

    @Test func expiryIsIntervalTimesLiveness() {
        #expect(settings.expiry == .seconds(1))
        #expect(LivenessSettings.default.expiry == .seconds(3))
        var peer = PeerLiveness(now: t0, settings: settings)
        #expect(!peer.isExpired(now: t0.advanced(by: .milliseconds(999))))
        #expect(peer.isExpired(now: t0.advanced(by: .seconds(1))))
        // Four missed heartbeats, then one heard: a fresh window from then.
        peer.heard(now: t0.advanced(by: .milliseconds(800)), settings: settings)
        #expect(!peer.isExpired(now: t0.advanced(by: .milliseconds(1799))))
        #expect(peer.isExpired(now: t0.advanced(by: .milliseconds(1800))))
    }

    @Test func aHeartbeatIsOwedOnlyAfterAnIntervalWithoutSending() {
        var peer = PeerLiveness(now: t0, settings: settings)
        #expect(!peer.needsHeartbeat(now: t0.advanced(by: .milliseconds(199)), settings: settings))
        #expect(peer.needsHeartbeat(now: t0.advanced(by: .milliseconds(200)), settings: settings))
        peer.lastSent = t0.advanced(by: .milliseconds(150))
        #expect(!peer.needsHeartbeat(now: t0.advanced(by: .milliseconds(349)), settings: settings))
        #expect(peer.needsHeartbeat(now: t0.advanced(by: .milliseconds(350)), settings: settings))
        // Hearing from the peer is not sending to it.
        peer.heard(now: t0.advanced(by: .seconds(10)), settings: settings)
        #expect(peer.needsHeartbeat(now: t0.advanced(by: .seconds(10)), settings: settings))
    }
}
