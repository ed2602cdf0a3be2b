// The broker's live dashboard on the observability HTTP port: `GET /` is one self-contained page
// (DashboardPage.swift: inline CSS and JS, no external fetch), `GET /events` a server-sent-events
// stream of the status as JSON. Each stream pulls the latest status (never a queue of them), so a
// slow browser holds one encoded status at most and the broker's memory does not grow; the number
// of streams is capped. Read-only: no route changes anything.

import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// Where the dashboard's status comes from.
public struct DashboardFeed<Status: Encodable & Sendable>: Sendable {
    /// The status now, or `nil` while none is available yet (called every ``pollInterval``).
    public var status: @Sendable () -> Status?
    /// Whether the new status differs from the last one sent in a way to show at once (a gateway
    /// came or went, a worker died); other changes (rates, uptime) go out every ``periodicInterval``.
    public var isNews: @Sendable (_ old: Status, _ new: Status) -> Bool

    /// How often each stream looks for a new status.
    public static var pollInterval: Duration { .milliseconds(100) }
    /// How often each stream sends even without news.
    public static var periodicInterval: Duration { .milliseconds(500) }

    /// Creates a feed.
    ///
    /// - Parameters:
    ///   - status: The status now (`nil`: not yet).
    ///   - isNews: Whether a status must be sent at once.
    public init(status: @escaping @Sendable () -> Status?, isNews: @escaping @Sendable (Status, Status) -> Bool) {
        self.status = status
        self.isNews = isNews
    }
}

/// The limits of the dashboard's HTTP side (defaults in docs/SECURITY.md).
public struct DashboardLimits: Sendable {
    /// Event streams open at once; more get 503.
    public var maxStreams = 16
    /// Connections open at once on the port (page, streams, probes, scrapes).
    public var maxConnections = 64
    /// A connection that neither reads nor writes this long is closed (slow or stuck clients).
    public var idleTimeout: Duration = .seconds(30)

    /// The defaults.
    public init() {}
}

/// Counts the open event streams.
final class StreamSlots: Sendable {
    private let open = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// A slot, or `nil` if all are taken; the slot is given back when it is released.
    func take() -> Slot? {
        while true {
            let current = open.load(ordering: .acquiring)
            guard current < limit else { return nil }
            if open.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing).exchanged {
                return Slot(self)
            }
        }
    }

    fileprivate func giveBack() { open.subtract(1, ordering: .acquiringAndReleasing) }

    /// One open stream; released when the response body that holds it is gone.
    final class Slot: Sendable {
        private let slots: StreamSlots
        fileprivate init(_ slots: StreamSlots) { self.slots = slots }
        deinit { slots.giveBack() }
    }
}

extension Observability {
    /// The HTTP server with the dashboard: `/metrics`, `/healthz`, `/readyz` as
    /// ``httpService(address:registry:ready:logger:onListening:)``, plus `GET /` (the page) and
    /// `GET /events` (the status as server-sent events), behind `access`.
    ///
    /// - Parameters:
    ///   - address: Where to listen.
    ///   - access: Open (loopback only) or a token.
    ///   - registry: The Prometheus registry to expose.
    ///   - ready: Whether the role is ready.
    ///   - feed: The dashboard's status.
    ///   - limits: Streams, connections and idle timeout.
    ///   - logger: For the server's own lines.
    ///   - onListening: Called with the bound port once the server listens.
    /// - Throws: ``HTTPAccessError`` `tokenRequired` for a non-loopback address without a token.
    public static func dashboardService<Status: Encodable & Sendable>(
        address: HTTPAddress, access: HTTPAccess, registry: PrometheusCollectorRegistry, ready: @escaping @Sendable () -> Bool,
        feed: DashboardFeed<Status>, limits: DashboardLimits = DashboardLimits(), logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> any Service {
        try access.validate(for: address)
        let router = Router()
        router.add(middleware: HTTPAccessMiddleware(access: access))
        addProbeRoutes(router, registry: registry, ready: ready)
        let slots = StreamSlots(limit: limits.maxStreams)
        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: pageHeaders(contentType: "text/html; charset=utf-8"),
                     body: .init(byteBuffer: ByteBuffer(string: dashboardPageHTML)))
        }
        router.get("events") { _, _ -> Response in
            guard let slot = slots.take() else {
                return Response(status: .serviceUnavailable, headers: [.contentType: "text/plain", .retryAfter: "5"],
                                body: .init(byteBuffer: ByteBuffer(string: "too many dashboard streams (at most \(limits.maxStreams))\n")))
            }
            var headers = pageHeaders(contentType: "text/event-stream")
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                try await streamEvents(feed, to: &writer, holding: slot)
            })
        }
        var http1 = HTTP1Channel.Configuration(idleTimeout: .nanoseconds(Int64(limits.idleTimeout.components.seconds) * 1_000_000_000))
        http1.httpDecoder = .init(maxHeaderFieldSize: 8 * 1024, maxHeaderListSize: 16 * 1024, maxHeaderFieldCount: 100)
        return Application(
            router: router,
            server: .http1(configuration: http1),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil,
                                 availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections)),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? address.port) },
            logger: logger)
    }

    /// Headers of the page and the stream: nothing may be loaded from elsewhere, framed, sniffed,
    /// or leak the token through a referrer.
    static func pageHeaders(contentType: String) -> HTTPFields {
        [
            .contentType: contentType,
            .contentSecurityPolicy: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            .xContentTypeOptions: "nosniff",
            .init("Referrer-Policy")!: "no-referrer",
        ]
    }

    /// Writes the status as events until the client goes, the server shuts down, or the feed
    /// has nothing for a long time. One event at once, then on news or every periodic interval.
    static func streamEvents<Status: Encodable & Sendable>(
        _ feed: DashboardFeed<Status>, to writer: inout any ResponseBodyWriter, holding slot: StreamSlots.Slot
    ) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A browser reconnects a second after the stream ends (a broker restart, a shutdown).
        try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
        var last: Status?
        var lastSent = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let status = feed.status() {
                let due = last.map { feed.isNews($0, status) || lastSent.duration(to: .now) >= DashboardFeed<Status>.periodicInterval } ?? true
                if due {
                    var buffer = ByteBuffer(string: "data: ")
                    buffer.writeBytes(try encoder.encode(status))
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                    last = status
                    lastSent = .now
                }
            }
            try await Task.sleep(for: DashboardFeed<Status>.pollInterval)
        }
        withExtendedLifetime(slot) {}
        try await writer.finish(nil)
    }

    /// `/metrics`, `/healthz` and `/readyz`.
    static func addProbeRoutes(_ router: Router<BasicRequestContext>, registry: PrometheusCollectorRegistry,
                               ready: @escaping @Sendable () -> Bool) {
        router.get("metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(registry.emitToBuffer())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: buffer))
        }
        router.get("healthz") { _, _ -> String in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            let ready = ready()
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                            body: .init(byteBuffer: ByteBuffer(string: ready ? "ready\n" : "not ready\n")))
        }
    }
}
