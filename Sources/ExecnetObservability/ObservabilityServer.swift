// The HTTP side of execnet-broker and execnet-agent: `/metrics` in Prometheus text format (the
// swift-metrics backend is swift-prometheus), `/healthz` and `/readyz`, on a port of their own.
// Hummingbird serves it; it runs beside the role's ZeroMQ I/O thread and never touches its state:
// the role publishes its metrics from its own thread, and readiness is one atomic flag.

import CoreMetrics
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// Where the observability HTTP server listens: a host (or IP address) and a port.
public struct HTTPAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host or IP address to bind (`127.0.0.1`, `::1`, `0.0.0.0`).
    public var host: String
    /// The TCP port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, or a bare `PORT` (on loopback, 127.0.0.1).
    ///
    /// - Returns: `nil` if the text is not one of those or the port is out of range.
    public init?(parsing text: String) {
        var host = "127.0.0.1"
        var portText = Substring(text)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
        self.init(host: host, port: port)
    }

    /// `host:port`, with brackets around an IPv6 address.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is a loopback address (or `localhost`).
    public var isLoopback: Bool { host == "localhost" || host.hasPrefix("127.") || host == "::1" }
}

/// A flag the role sets when it is ready to serve and clears when it shuts down (`/readyz`).
public final class ReadinessFlag: Sendable {
    private let value = Atomic<Bool>(false)

    /// A flag, not ready.
    public init() {}

    /// Whether the role is ready.
    public var isReady: Bool { value.load(ordering: .acquiring) }

    /// Sets the flag.
    public func set(_ ready: Bool) { value.store(ready, ordering: .releasing) }
}

/// Bootstraps swift-metrics with a Prometheus backend and makes the HTTP service.
public enum Observability {
    /// Bootstraps swift-metrics (once per process) with a Prometheus registry and returns it.
    ///
    /// Call before the role starts: metric objects keep the factory in force when they are made.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// The HTTP server as a Service: `GET /metrics` (Prometheus text), `GET /healthz` (200 while the
    /// process serves), `GET /readyz` (200 when `ready` is set, else 503).
    ///
    /// - Parameters:
    ///   - address: Where to listen.
    ///   - registry: The Prometheus registry to expose.
    ///   - ready: Whether the role is ready (called per `/readyz` request).
    ///   - logger: For the server's own lines.
    ///   - onListening: Called with the bound port once the server listens.
    public static func httpService(
        address: HTTPAddress, registry: PrometheusCollectorRegistry, ready: @escaping @Sendable () -> Bool, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> any Service {
        let router = Router()
        addProbeRoutes(router, registry: registry, ready: ready)
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? address.port) },
            logger: logger)
    }
}
