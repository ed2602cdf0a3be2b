// Who may read the dashboard: the HTTP port is open on loopback and needs the token anywhere else
// (the token is the HTTP form of the status key role); a non-loopback address without a token is
// refused at start. Plus what a hostile browser could try: paths outside the page, and more event
// streams than the cap. A real execnet-broker, real TCP.

import Execnet
@testable import ExecnetCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A token file with `token` in a fresh private directory; returns its path.
private func writeTokenFile(_ token: String) throws -> String {
    var template = Array("/tmp/execnet-token-XXXXXX".utf8CString)
    guard let directory = mkdtemp(&template) else { throw ExecnetError(.transport, "mkdtemp failed") }
    let path = String(cString: directory) + "/http-token"
    try writeTextFile(path, token + "\n", mode: 0o600, overwrite: true)
    return path
}

/// Opens `GET path` on 127.0.0.1:`port` and reads the response head only, leaving the connection
/// open (an event stream); returns the socket and the status code. Blocks up to 5 s.
private func openStream(port: Int, path: String) -> (fd: Int32, status: Int)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard connected == 0, request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else {
        close(fd)
        return nil
    }
    var head: [UInt8] = []
    var byte: UInt8 = 0
    while head.count < 4096, read(fd, &byte, 1) == 1 {
        head.append(byte)
        if head.count >= 12 { break }
    }
    let text = String(decoding: head, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 "), let status = Int(text.dropFirst(9).prefix(3)) else {
        close(fd)
        return nil
    }
    return (fd, status)
}

extension ProcessTests {
    @Suite struct DashboardHTTPTests {
        @Test func onLoopbackThePageAndItsEventsNeedNoToken() async throws {
            let port = try freeLoopbackPort()
            let (broker, _) = try await startBroker(bind: "tcp://127.0.0.1:*", ["--http-address", "\(port)"])
            defer { stopChild(broker) }
            _ = try await scrapeUntil(port: port, path: "/readyz") { $0.hasPrefix("ready") }
            let page = try #require(await fetchHTTP(port: port, path: "/"))
            #expect(page.status == 200)
            #expect(page.body.contains("<title>execnet broker</title>"))
            // The page loads nothing from elsewhere: its only URL is the SVG namespace's name.
            #expect(page.body.ranges(of: "http").count == page.body.ranges(of: "http://www.w3.org/2000/svg").count)
            #expect(!page.body.contains("src=") && !page.body.contains("href=") && !page.body.contains("@import"))
            let events = try #require(await offPool { openStream(port: port, path: "/events") })
            close(events.fd)
            #expect(events.status == 200)
        }

        @Test func withATokenEveryRequestButTheProbesMustPresentIt() async throws {
            let token = "dashboard-token-0123456789"
            let file = try writeTokenFile(token)
            let port = try freeLoopbackPort()
            let (broker, _) = try await startBroker(bind: "tcp://127.0.0.1:*", ["--http-address", "127.0.0.1:\(port)", "--http-token-file", file])
            defer { stopChild(broker) }
            _ = try await scrapeUntil(port: port, path: "/readyz") { $0.hasPrefix("ready") }
            #expect(await fetchHTTP(port: port, path: "/")?.status == 401)
            #expect(await fetchHTTP(port: port, path: "/", headers: ["Authorization: Bearer wrong-token-0123456789"])?.status == 401)
            #expect(await fetchHTTP(port: port, path: "/?token=wrong-token-0123456789")?.status == 401)
            #expect(await fetchHTTP(port: port, path: "/metrics")?.status == 401)
            #expect(await fetchHTTP(port: port, path: "/events?token=\(token)x")?.status == 401)
            let page = await fetchHTTP(port: port, path: "/", headers: ["Authorization: Bearer \(token)"])
            #expect(page?.status == 200)
            #expect(page?.body.contains("<title>execnet broker</title>") == true)
            #expect(await fetchHTTP(port: port, path: "/?token=\(token)")?.status == 200)
            #expect(await fetchHTTP(port: port, path: "/metrics", headers: ["Authorization: Bearer \(token)"])?.status == 200)
            let events = try #require(await offPool { openStream(port: port, path: "/events?token=\(token)") })
            close(events.fd)
            #expect(events.status == 200)
            // The probes tell only whether the broker lives: the kubelet cannot carry a secret.
            #expect(await fetchHTTP(port: port, path: "/healthz")?.status == 200)
            #expect(await fetchHTTP(port: port, path: "/readyz")?.status == 200)
        }

        @Test func aNonLoopbackAddressWithoutATokenIsRefusedAtStart() async throws {
            let port = try freeLoopbackPort()
            let (status, output) = try await runToCompletion("\(buildDirectory())/execnet-broker", [
                "serve", "--bind", "tcp://127.0.0.1:0", "--http-address", "0.0.0.0:\(port)",
            ])
            #expect(status != 0)
            #expect(output.contains("is not loopback"), "\(output)")
            #expect(!output.contains("listening on"), "\(output)")
        }

        @Test func aNonLoopbackAddressWithATokenServesOnlyWithTheToken() async throws {
            let token = "another-dashboard-token-42"
            let file = try writeTokenFile(token)
            let port = try freeLoopbackPort()
            let (broker, _) = try await startBroker(bind: "tcp://127.0.0.1:*", ["--http-address", "0.0.0.0:\(port)", "--http-token-file", file])
            defer { stopChild(broker) }
            _ = try await scrapeUntil(port: port, path: "/readyz") { $0.hasPrefix("ready") }
            #expect(await fetchHTTP(port: port, path: "/")?.status == 401)
            #expect(await fetchHTTP(port: port, path: "/", headers: ["Authorization: Bearer \(token)"])?.status == 200)
        }

        @Test func nothingOutsideThePageIsServedAndEventStreamsAreCapped() async throws {
            let port = try freeLoopbackPort()
            let (broker, _) = try await startBroker(bind: "tcp://127.0.0.1:*", ["--http-address", "127.0.0.1:\(port)"])
            defer { stopChild(broker) }
            _ = try await scrapeUntil(port: port, path: "/readyz") { $0.hasPrefix("ready") }
            for path in ["/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "/index.html", "//etc/passwd", "/events/../../etc/passwd"] {
                let answer = await fetchHTTP(port: port, path: path)
                #expect(answer?.status == 404, "\(path): \(String(describing: answer?.status))")
                #expect(answer?.body.contains("root:") != true)
            }
            // 16 streams at once; the 17th is refused, and a slot is free again once one closes.
            var streams: [Int32] = []
            defer { for fd in streams { close(fd) } }
            for _ in 0..<16 {
                let stream = try #require(await offPool { openStream(port: port, path: "/events") })
                #expect(stream.status == 200)
                streams.append(stream.fd)
            }
            let refused = try #require(await offPool { openStream(port: port, path: "/events") })
            close(refused.fd)
            #expect(refused.status == 503)
            close(streams.removeLast())
            #expect(try await eventually(within: .seconds(10), every: .milliseconds(100)) {
                guard let again = try await offPool({ openStream(port: port, path: "/events") }) else { return false }
                close(again.fd)
                return again.status == 200
            })
        }
    }
}
