// Load reports (LOAD_REPORT, docs/PROTOCOL.md "Load reports"): real agents report their host's load
// to a real broker, which shows it in its typed status and its metrics; an agent reports only to a
// broker that asks (the version rule), and a broker shows no load for an agent that never reports;
// a hostile agent's reports (NaN, negative, huge, wrong kinds, another host's, wrong frames) are
// refused or clamped and never stop the broker.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetCore
@testable import ExecnetHostAgent
@testable import ExecnetValue
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A load report payload with the given fields (any kinds).
private func reportPayload(_ fields: [String: Value]) -> [UInt8] {
    var payload = ControlPayload()
    for (key, value) in fields { payload[key] = value }
    return payload.encoded
}

private func validFields(host: String, load1: Double) -> [String: Value] {
    ["host": .string(host), "load1": .float(load1), "load5": .float(0.5), "load15": .float(0.25), "cpus": .int(4),
     "memory_available": .int(1 << 30), "memory_total": .int(4 << 30)]
}

extension ProcessTests {
    @Suite struct LoadReportTests {
        @Test func realAgentsReportTheirHostsLoadToTheBrokersStatusAndMetrics() async throws {
            let port = try freeLoopbackPort()
            let (broker, endpoint) = try await startBroker(["--load-report-interval", "0.2", "--http-address", "127.0.0.1:\(port)"])
            defer { stopChild(broker) }
            let first = try await startAgent(endpoint, name: "loadhost-a", slots: 2)
            defer { stopChild(first) }
            let second = try await startAgent(endpoint, name: "loadhost-b", slots: 2)
            defer { stopChild(second) }
            let names = ["loadhost-a", "loadhost-b"]
            let reported = try await pollFor(within: .seconds(20), every: .milliseconds(50)) { () -> BrokerStatus? in
                guard let status = try? await typedBrokerStatus(endpoint),
                    names.allSatisfy({ name in status.hosts.first { $0.name == name }?.load != nil })
                else { return nil }
                return status
            }
            let status = try #require(reported, "the agents' load never reached the broker's status")
            // Both agents run on this machine: their reports are this machine's.
            let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            let memoryTotal = try #require(HostLoadSampler.sample(host: "here")).memoryTotal
            for name in names {
                let load = try #require(status.hosts.first { $0.name == name }?.load)
                #expect(load.cpus == cpus)
                #expect(load.memoryTotalBytes == memoryTotal)
                #expect(load.memoryAvailableBytes > 0 && load.memoryAvailableBytes <= load.memoryTotalBytes)
                for average in [load.loadAverage1, load.loadAverage5, load.loadAverage15] {
                    #expect(average.isFinite && average >= 0)
                }
                #expect(load.secondsSinceReport >= 0 && load.secondsSinceReport < 60)
            }
            // The names a JSON reader (the dashboard) sees are the field names, as Codable gives them.
            let encoded = try ValueEncoder().encode(try #require(status.hosts.first?.load))
            let keys = Set(try #require(encoded.dictValue).keys.compactMap(\.stringValue))
            #expect(keys == ["loadAverage1", "loadAverage5", "loadAverage15", "cpus", "memoryAvailableBytes", "memoryTotalBytes",
                             "secondsSinceReport"])
            // `execnet-broker status` shows it in its table.
            let table = try CollectedChild("\(buildDirectory())/execnet-broker", ["status", "--connect", endpoint])
            let shown = await table.wait(.seconds(20)) { child in
                child.stdout.split(separator: "\n").contains { $0.hasPrefix("loadhost-a") && $0.contains(" \(cpus) CPUs, ") }
            }
            #expect(shown, "no load in the status table:\n\(table.stdout)")
            // The per-host gauges.
            let gauge = "execnet_broker_host_cpus{host=\"loadhost-b\"}"
            let body = try await scrapeUntil(port: port) { sample($0, gauge) != nil }
            #expect(sample(body, gauge) == Double(cpus), "no \(gauge) in:\n\(body)")
            #expect(sample(body, "execnet_broker_host_memory_total_bytes{host=\"loadhost-a\"}") == Double(memoryTotal))
            #expect(body.contains("execnet_broker_host_load1{host=\"loadhost-a\"}"))
        }

        @Test func anAgentReportsOnlyToABrokerThatAsksForThem() async throws {
            // This test is the broker: a ROUTER that welcomes the agent, first as a broker that
            // predates load reports, then as one that asks for them every 100 ms.
            let broker = try RawAgentBroker()
            let router = broker.router
            defer { broker.close() }
            let agent = try broker.startAgent(name: "versionhost")
            defer { stopChild(ChildProcess(pid: agent.pid, pidfd: agent.pidfd)) }
            /// The agent's messages until `stop` says so (the broker heartbeats it meanwhile), within 10 s.
            func collect(from agentID: [UInt8]?, until stop: ([WireMessage]) -> Bool) async throws -> ([UInt8]?, [WireMessage]) {
                var seen: [WireMessage] = []
                var id = agentID
                _ = try await pollFor(within: .seconds(10)) { () -> Bool? in
                    while let frames = try router.receive(dontWait: true) {
                        guard frames.count == 4, let message = try? WireMessage.parse(frames.dropFirst()) else { continue }
                        id = frames[0]
                        seen.append(message)
                        if stop(seen) { return true }
                    }
                    if let id { _ = try router.send([id] + WireMessage(channelID: 0, type: .heartbeat, payload: []).frames) }
                    return nil
                }
                return (id, seen)
            }
            let (helloID, hello) = try await collect(from: nil) { $0.last?.type == .agentHello }
            let agentID = try #require(helloID, "the agent did not say hello: \(hello.map(\.type))")
            var welcome = ControlPayload()
            welcome["protocol"] = .int(wireProtocolVersion)
            // A wide liveness window (0.2 s × 50), so a loaded machine does not make the agent
            // take this broker for lost and register again.
            welcome["heartbeat_ms"] = .int(200)
            welcome["liveness"] = .int(50)
            _ = try router.send([agentID] + WireMessage(channelID: 0, type: .welcome, payload: welcome.encoded).frames)
            // Registered with an "old" broker: heartbeats, never a report.
            let (_, quiet) = try await collect(from: agentID) { seen in seen.filter { $0.type == .heartbeat }.count >= 5 }
            #expect(quiet.filter { $0.type == .heartbeat }.count >= 5, "the agent went silent: \(quiet.map(\.type))")
            #expect(!quiet.contains { $0.type == .loadReport }, "an agent sent LOAD_REPORT to a broker that did not ask")
            #expect(!quiet.contains { $0.type == .agentHello }, "the agent did not stay registered")

            // A broker that asks: the agent registers again (UNKNOWN_PEER) and reports.
            _ = try router.send([agentID] + WireMessage(channelID: 0, type: .unknownPeer, payload: []).frames)
            let (_, again) = try await collect(from: agentID) { $0.last?.type == .agentHello }
            try #require(again.last?.type == .agentHello, "no new hello after UNKNOWN_PEER: \(again.map(\.type))")
            welcome["load_report_ms"] = .int(100)
            _ = try router.send([agentID] + WireMessage(channelID: 0, type: .welcome, payload: welcome.encoded).frames)
            let (_, reports) = try await collect(from: agentID) { seen in seen.filter { $0.type == .loadReport }.count >= 2 }
            let received = reports.filter { $0.type == .loadReport }
            try #require(received.count >= 2, "no load reports: \(reports.map(\.type))")
            for message in received {
                #expect(message.channelID == 0)
                let report = try LoadReport(validating: message.payload, from: "versionhost")
                #expect(report.cpus == Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
                #expect(report.memoryTotal > 0)
            }
        }

        @Test func hostileLoadReportsAreRefusedOrClampedAndNeverStopTheBroker() async throws {
            let (broker, endpoint) = try await startBroker(["--load-report-interval", "0.2", "--liveness", "50"])
            defer { stopChild(broker) }
            let (hostile, welcome) = try await registerRawAgent(endpoint, name: "hostile")
            defer { hostile.close() }
            #expect(welcome.int("load_report_ms") == 200)
            // An agent that never reports (an older agent): its host has no load, and the status decodes.
            let (victim, _) = try await registerRawAgent(endpoint, name: "victim")
            defer { victim.close() }
            let client = try await RawClient(endpoint)
            defer { client.close() }
            func heartbeats() throws {
                for agent in [hostile, victim] {
                    _ = try agent.socket.send(WireMessage(channelID: 0, type: .heartbeat, payload: []).frames, dontWait: true)
                }
                try client.heartbeat()
            }
            func report(_ fields: [String: Value], channel: Int32 = 0) throws {
                _ = try hostile.socket.send(WireMessage(channelID: channel, type: .loadReport, payload: reportPayload(fields)).frames)
            }
            // Everything the hostile agent sent before the reply to a SPAWN has been handled once the
            // client has that reply: the broker handles one peer's messages in order.
            var barriers = 0
            func barrier() async throws {
                barriers += 1
                let address = Array("barrier\(barriers)".utf8)
                var request = ControlPayload()
                request["address"] = .bytes(address)
                request["host"] = "hostile"
                request["env"] = .dict([:])
                try client.socket.send([[]] + WireMessage(channelID: 0, type: .spawn, payload: request.encoded).frames)
                let spawn = try await hostile.receive(within: .seconds(10), whileWaiting: heartbeats) {
                    (try? WireMessage.parse($0))?.type == .spawn
                }
                try #require(spawn != nil, "the hostile agent got no SPAWN")
                var refusal = ControlPayload()
                refusal["address"] = .bytes(address)
                refusal["reason"] = "barrier"
                try hostile.socket.send(WireMessage(channelID: 0, type: .spawnFailed, payload: refusal.encoded).frames)
                try #require(try await client.receive(.spawnFailed, from: address) != nil, "no SPAWN_FAILED through the broker")
            }
            func load(_ name: String) async throws -> BrokerStatus.HostLoad? {
                let status = try await typedBrokerStatus(endpoint)
                return try #require(status.hosts.first { $0.name == name }, "host \(name) is gone").load
            }

            try report(validFields(host: "hostile", load1: 1.5))
            try await barrier()
            let kept = try #require(try await load("hostile"))
            #expect(kept.loadAverage1 == 1.5 && kept.cpus == 4 && kept.memoryAvailableBytes == 1 << 30 && kept.memoryTotalBytes == 4 << 30)
            #expect(try await load("victim") == nil)

            var refused: [[String: Value]] = []
            for key in ["load1", "load5", "load15"] {
                for bad: Value in [.float(.nan), .float(.infinity), .float(-.infinity), .float(-1), .string("1.0"), .none] {
                    var fields = validFields(host: "hostile", load1: 9)
                    fields[key] = bad
                    refused.append(fields)
                }
            }
            for key in ["cpus", "memory_available", "memory_total"] {
                for bad: Value in [.int(-1), .float(2), .bigInt(try BigInteger(parsing: "123456789012345678901234567890")), .string("4"), .none] {
                    var fields = validFields(host: "hostile", load1: 9)
                    fields[key] = bad
                    refused.append(fields)
                }
            }
            var noCPUs = validFields(host: "hostile", load1: 9)
            noCPUs["cpus"] = .int(0)
            refused.append(noCPUs)
            var missing = validFields(host: "hostile", load1: 9)
            missing["host"] = nil
            refused.append(missing)
            refused.append(validFields(host: "victim", load1: 9))  // another host's
            for fields in refused { try report(fields) }
            try report(validFields(host: "hostile", load1: 9), channel: 7)
            // Wrong shapes: not a dict, too large, four frames, two frames, no payload.
            let raw: [[[UInt8]]] = [
                WireMessage(channelID: 0, type: .loadReport, payload: encodePlain(.list([.float(1)]))).frames,
                WireMessage(channelID: 0, type: .loadReport, payload: reportPayload(
                    validFields(host: "hostile", load1: 9).merging(["padding": .bytes([UInt8](repeating: 7, count: 5000))]) { $1 })).frames,
                [[]] + WireMessage(channelID: 0, type: .loadReport, payload: reportPayload(validFields(host: "hostile", load1: 9))).frames,
                Array(WireMessage(channelID: 0, type: .loadReport, payload: []).frames.prefix(2)),
                WireMessage(channelID: 0, type: .loadReport, payload: []).frames,
                WireMessage(channelID: 0, type: .loadReport, payload: [0xff, 0x00, 0x51]).frames,
            ]
            for frames in raw { _ = try hostile.socket.send(frames) }
            // A client and a stranger sending reports.
            try client.socket.send([[]] + WireMessage(channelID: 0, type: .loadReport,
                                                      payload: reportPayload(validFields(host: "victim", load1: 9))).frames)
            let stranger = try RawDealer(endpoint)
            defer { stranger.close() }
            try stranger.socket.send(WireMessage(channelID: 0, type: .loadReport, payload: reportPayload(validFields(host: "victim", load1: 9))).frames)
            let unknown = try await stranger.receive(within: .seconds(10)) { (try? WireMessage.parse($0))?.type == .unknownPeer }
            #expect(unknown != nil, "a stranger's LOAD_REPORT was not answered with UNKNOWN_PEER")
            try await barrier()
            #expect(kill(broker.pid, 0) == 0)
            #expect(try await load("hostile") .map { ($0.loadAverage1, $0.cpus, $0.memoryTotalBytes) } ?? (0, 0, 0) == (1.5, 4, 4 << 30),
                    "a refused report changed the host's load")
            #expect(try await load("victim") == nil, "a report for another host reached it")

            // Huge finite values are clamped; an int load average is read as a float.
            var huge = validFields(host: "hostile", load1: 1e300)
            huge["load5"] = .int(3)
            huge["cpus"] = .int(.max)
            huge["memory_available"] = .int(.max)
            huge["memory_total"] = .int(1 << 40)
            try report(huge)
            try await barrier()
            let clamped = try #require(try await load("hostile"))
            #expect(clamped.loadAverage1 == LoadReport.maximumLoad && clamped.loadAverage5 == 3)
            #expect(clamped.cpus == LoadReport.maximumCPUs)
            #expect(clamped.memoryTotalBytes == 1 << 40 && clamped.memoryAvailableBytes == 1 << 40)
        }
    }
}
