// execnet-broker and execnet-agent serve /metrics, /healthz and /readyz on their --http-address:
// a real broker and agent, a real gateway through them, and real HTTP requests over a TCP socket.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ExecnetError(.transport, "socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw ExecnetError(.transport, "bind failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// One HTTP/1.0 GET to 127.0.0.1:`port` over a plain TCP socket: the status code and the body, or
/// `nil` if nothing listens. Blocks (bounded by 5 s socket timeouts); call it off the cooperative pool.
func httpGet(port: Int, path: String, headers: [String] = []) -> (status: Int, body: String)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let extra = headers.map { $0 + "\r\n" }.joined()
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(extra)\r\n".utf8)
    guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    // The head ends at the first empty line.
    let separator = Array("\r\n\r\n".utf8)
    guard let end = (0...max(0, response.count - separator.count)).first(where: {
        response.count >= separator.count && Array(response[$0..<$0 + separator.count]) == separator
    }) else { return nil }
    let head = String(decoding: response[..<end], as: UTF8.self)
    guard let statusLine = head.split(separator: "\r\n").first, statusLine.hasPrefix("HTTP/1."),
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return (status, String(decoding: response[(end + separator.count)...], as: UTF8.self))
}

/// `httpGet` on a thread of its own.
func fetchHTTP(port: Int, path: String, headers: [String] = []) async -> (status: Int, body: String)? {
    await withCheckedContinuation { continuation in
        OSThread(name: "test-http") { continuation.resume(returning: httpGet(port: port, path: path, headers: headers)) }.detach()
    }
}

/// The value of the sample `name` (with its labels, as exposed) in a Prometheus text body.
func sample(_ body: String, _ name: String) -> Double? {
    for line in body.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1))
    }
    return nil
}

/// Scrapes until `done` holds for the body (bounded), returning the last body.
func scrapeUntil(port: Int, path: String = "/metrics", within: Duration = .seconds(15),
                 _ done: (String) -> Bool) async throws -> String {
    let deadline = ContinuousClock.now.advanced(by: within)
    var last = ""
    while ContinuousClock.now < deadline {
        if let (status, body) = await fetchHTTP(port: port, path: path), status == 200 {
            last = body
            if done(body) { return body }
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    return last
}

extension ProcessTests {
    @Suite struct ObservabilityHTTPTests {
        @Test func theBrokerAndTheAgentServeMetricsAndProbes() async throws {
            let brokerPort = try freeLoopbackPort()
            let (broker, endpoint) = try await startBroker(bind: "tcp://127.0.0.1:*", ["--http-address", "127.0.0.1:\(brokerPort)"])
            defer { stopChild(broker) }
            let agentPort = try freeLoopbackPort()
            let agent = try await startAgent(endpoint, name: "metricshost", slots: 4, ["--http-address", "\(agentPort)"])
            defer { stopChild(agent) }

            // The probes: the broker is ready once it listens, the agent once it registered.
            let brokerBody = try await scrapeUntil(port: brokerPort, path: "/readyz") { $0.contains("ready") }
            #expect(brokerBody.hasPrefix("ready"))
            #expect(await fetchHTTP(port: brokerPort, path: "/healthz")?.status == 200)
            #expect(await fetchHTTP(port: agentPort, path: "/readyz")?.status == 200)
            #expect(await fetchHTTP(port: agentPort, path: "/healthz")?.status == 200)
            #expect(await fetchHTTP(port: brokerPort, path: "/no-such-page")?.status == 404)

            let spec = "broker=\(endpoint)//host=metricshost//worker=\(buildDirectory())/ExecnetTestWorker"
            try await withTestGroup(1, specs: [spec]) { group in
                let echo = try group[0].remoteExec("echo")
                for index in 0..<10 { try await echo.send(.int(Int64(index))) }
                for index in 0..<10 { #expect(try await echo.receive(timeout: .seconds(10)) == .int(Int64(index))) }
                // While the gateway runs: the broker counts it for its client, by fingerprint.
                let running = try await scrapeUntil(port: brokerPort) {
                    sample($0, #"execnet_broker_client_gateways{client="anonymous"}"#) == 1
                }
                #expect(sample(running, #"execnet_broker_client_gateways{client="anonymous"}"#) == 1)
                #expect(sample(running, #"execnet_broker_host_workers{host="metricshost"}"#) == 1)
            }
            let body = try await scrapeUntil(port: brokerPort) {
                (sample($0, "execnet_broker_messages_received_total") ?? 0) >= 20
                    && sample($0, #"execnet_broker_host_workers{host="metricshost"}"#) == 0
            }
            #expect((sample(body, "execnet_broker_messages_received_total") ?? 0) >= 20)
            #expect((sample(body, "execnet_broker_messages_sent_total") ?? 0) >= 20)
            #expect(sample(body, #"execnet_broker_host_slots{host="metricshost"}"#) == 4)
            #expect(sample(body, #"execnet_broker_host_workers{host="metricshost"}"#) == 0)
            #expect(sample(body, "execnet_broker_memory_cap_bytes") == Double(BrokerLimits().maxInFlightBytes))
            #expect(sample(body, "execnet_broker_agents") == 1)
            #expect(body.contains("# TYPE execnet_broker_messages_received_total counter"))

            let agentBody = try await scrapeUntil(port: agentPort) {
                sample($0, #"execnet_agent_worker_exits_total{cause="exited"}"#) == 1
            }
            #expect(sample(agentBody, "execnet_agent_workers_started_total") == 1)
            #expect(sample(agentBody, "execnet_agent_slots") == 4)
            #expect(sample(agentBody, "execnet_agent_workers") == 0)
            #expect(sample(agentBody, #"execnet_agent_worker_exits_total{cause="exited"}"#) == 1)
        }

        @Test func theEnvironmentVariableTurnsTheServerOn() async throws {
            let port = try freeLoopbackPort()
            let (broker, ready) = try await startChild("\(buildDirectory())/execnet-broker", [
                "serve", "--bind", "tcp://127.0.0.1:*", "--log-level", "error",
            ], environment: ["EXECNET_BROKER_HTTP_ADDRESS=127.0.0.1:\(port)"])
            defer { stopChild(broker) }
            #expect(ready.hasPrefix("execnet-broker: listening on "))
            let body = try await scrapeUntil(port: port) { $0.contains("execnet_broker_agents") }
            #expect(sample(body, "execnet_broker_agents") == 0)
        }
    }
}
