// Group: the gateways a program made, by index and id; fan-out of a task to all of them; and
// termination: ask every worker to exit, kill what is left after the timeout, and end every
// channel of every dead peer so receive queues get their endmarkers.

import ExecnetCore
import ExecnetValue
import OrderedCollections
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How one gateway ended in ``Group/terminate(timeout:)``.
public struct TerminationReport: Sendable, Hashable, CustomStringConvertible {
    /// How the worker was stopped.
    public enum Outcome: Sendable, Hashable {
        /// It exited after being asked (or had exited before).
        case exited(WorkerExit)
        /// It was still alive after the timeout and was killed.
        case killed(WorkerExit)
        /// It was killed but had not been reaped when terminate returned (never reported as gone).
        case stillRunning
    }
    /// The gateway's id.
    public let gatewayID: String
    /// What happened to its worker.
    public let outcome: Outcome

    public var description: String { "\(gatewayID): \(outcome)" }
}

/// A set of gateways (execnet's `Group`).
///
/// Gateways get ids `gw0`, `gw1`, … unless their spec sets `id`. A gateway whose worker died stays
/// in the group, with its exit status, until ``terminate(timeout:)``; ``Gateway/exit()`` takes a
/// gateway out at once (as execnet's `gateway.exit()`).
public final class Group: Sendable {
    private struct State {
        var gateways: [Gateway] = []
        var nextNumber = 0
        /// The default spec as set (or as the broker's spec parts read).
        var defaultSpec: String
        /// The default spec, parsed once when set (a broker's is made from the binding, not from text).
        var defaults: Result<XSpec, any Error>

        /// The next automatic id (`gw0`, `gw1`, …) that no gateway of the group has.
        mutating func nextFreeID() -> String {
            var id: String
            repeat {
                id = "gw\(nextNumber)"
                nextNumber += 1
            } while gateways.contains(where: { $0.id == id })
            return id
        }
    }
    private let state: Mutex<State>
    /// The broker this group's gateways go to when their spec names no type.
    public let broker: BrokerBinding?

    /// An empty group.
    ///
    /// - Parameter broker: A broker that specs naming no gateway type go to (`"id=w1"`,
    ///   `"host=h2"`, or ``makeGateway(_:startupTimeout:)`` without a spec); `nil` keeps them local
    ///   (`popen`).
    /// - Throws: Nothing today; the embedded hub starts with the first gateway (kept `throws` so
    ///   that configuration checks can be added without breaking callers).
    public init(broker: BrokerBinding? = nil) throws {
        self.broker = broker
        let defaults = Result<XSpec, any Error> { try broker.map { try XSpec(broker: $0) } ?? XSpec("popen") }
        self.state = Mutex(State(defaultSpec: broker?.specPrefix ?? "popen", defaults: defaults))
    }

    /// The spec ``makeGateway(_:startupTimeout:)`` uses when given none (execnet's `defaultspec`).
    ///
    /// `popen`, or the ``broker``'s spec parts for a group made with one. A spec that names no
    /// gateway type (`"id=w1"`) gets these parts in front of its own.
    public var defaultSpec: String {
        get { state.withLock { $0.defaultSpec } }
        set {
            let defaults = Result<XSpec, any Error> { try XSpec(newValue) }
            state.withLock {
                $0.defaultSpec = newValue
                $0.defaults = defaults
            }
        }
    }

    /// Gives `spec` the group's next automatic id (`gw0`, `gw1`, …) if it has none (execnet's
    /// `allocate_id`).
    ///
    /// Ids are numbered per group and skip ids the group's gateways already have; a spec with an
    /// `id` keeps it.
    ///
    /// - Parameter spec: The spec to give an id.
    /// - Returns: The spec's id.
    @discardableResult
    public func allocateID(_ spec: inout XSpec) -> String {
        if let id = spec.id { return id }
        let id = state.withLock { $0.nextFreeID() }
        spec.id = id
        return id
    }

    /// A group with one gateway per spec, started in parallel.
    ///
    /// - Parameters:
    ///   - specs: Gateway specs, e.g. `["popen", "popen"]`.
    ///   - broker: A broker for specs that name no gateway type.
    ///   - startupTimeout: How long each worker may take to say hello.
    /// - Throws: The first start-up error; gateways that did start are terminated.
    public convenience init(_ specs: [String], broker: BrokerBinding? = nil, startupTimeout: Duration = .seconds(30)) async throws {
        try self.init(broker: broker)
        let parsed = try specs.map { try resolve($0) }
        let runtime = try await ClientRuntime.started()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for spec in parsed {
                    let gateway = try reserve(spec, runtime)
                    group.addTask { try await Group.start(gateway, timeout: startupTimeout) }
                }
                try await group.waitForAll()
            }
        } catch {
            await terminate(timeout: .seconds(1))
            throw error
        }
    }

    /// Parses a spec; one that names no gateway type goes to the group's broker, or is `popen`.
    func resolve(_ text: String) throws -> XSpec {
        try XSpec(text) { try state.withLock { $0.defaults }.get() }
    }

    /// Makes a gateway in this group and waits until its worker is ready.
    ///
    /// - Parameters:
    ///   - spec: The gateway spec. `nil`, or a spec naming no type, means the group's broker if it
    ///     has one, else `popen`.
    ///   - startupTimeout: How long the worker may take to say hello.
    /// - Returns: The running gateway.
    /// - Throws: ``ExecnetError``: `invalidSpec` (before any process starts), `workerNotFound`,
    ///   `timeout`, `workerDied`, `protocolVersionMismatch`, `spawnFailed`.
    public func makeGateway(_ spec: String? = nil, startupTimeout: Duration = .seconds(30)) async throws -> Gateway {
        let spec = try resolve(spec ?? "")
        let gateway = try reserve(spec, try await ClientRuntime.started())
        do {
            try await Group.start(gateway, timeout: startupTimeout)
        } catch {
            remove(gateway)
            gateway.kill(signal: SIGKILL)
            throw error
        }
        return gateway
    }

    /// Starts `gateway`; a missing stock worker's error says how a dependent package builds it.
    private static func start(_ gateway: Gateway, timeout: Duration) async throws {
        do {
            try await gateway.start(timeout: timeout)
        } catch let error as ExecnetError where error.code == .workerNotFound && gateway.spec.worker == nil {
            // The usual cause: a package that depends on this one but does not build its worker.
            throw ExecnetError(.workerNotFound, error.message + "; a package that depends on swift-execnet builds the "
                + "stock worker beside its program by listing .product(name: \"execnet-worker\", package: "
                + "\"swift-execnet\") in its target's dependencies (see README: A first program)",
                gatewayID: gateway.id)
        }
    }

    /// Creates a gateway object with its id and adds it to the group, before its worker starts.
    private func reserve(_ spec: XSpec, _ runtime: ClientRuntime) throws -> Gateway {
        let gateway = try state.withLock { state -> Gateway in
            var id: String
            if let given = spec.id {
                guard !state.gateways.contains(where: { $0.id == given }) else {
                    throw ExecnetError(.invalidSpec, "gateway id '\(given)' is already in use in this group")
                }
                id = given
            } else {
                id = state.nextFreeID()
            }
            let gateway = Gateway(id: id, spec: spec, routingID: runtime.nextRoutingID(for: id), runtime: runtime,
                                  group: self)
            state.gateways.append(gateway)
            return gateway
        }
        runtime.track(gateway)
        return gateway
    }

    /// Takes `gateway` out of the group (``Gateway/exit()``, a failed start).
    func remove(_ gateway: Gateway) {
        state.withLock { $0.gateways.removeAll { $0 === gateway } }
    }

    // MARK: - Access

    /// The gateways, in creation order.
    public var gateways: [Gateway] { state.withLock { $0.gateways } }

    /// The number of gateways.
    public var count: Int { state.withLock { $0.gateways.count } }

    /// The gateway at `index`.
    public subscript(index: Int) -> Gateway { state.withLock { $0.gateways[index] } }

    /// The gateway with id `id`, if any.
    public subscript(id: String) -> Gateway? { state.withLock { $0.gateways.first { $0.id == id } } }

    /// Whether a gateway with id `id` is in the group.
    public func contains(_ id: String) -> Bool { self[id] != nil }

    /// Whether `gateway` is in the group.
    public func contains(_ gateway: Gateway) -> Bool { state.withLock { $0.gateways.contains { $0 === gateway } } }

    /// Starts the same task in every gateway.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments.
    ///   - keywordArguments: Named arguments.
    /// - Returns: The channels, in gateway order.
    /// - Throws: As ``Gateway/remoteExec(_:arguments:keywordArguments:)``.
    public func remoteExec(
        _ task: String, arguments: [Value], keywordArguments: OrderedDictionary<String, Value> = [:]
    ) throws -> MultiChannel {
        MultiChannel(try gateways.map { try $0.remoteExec(task, arguments: arguments, keywordArguments: keywordArguments) })
    }

    /// Starts the same task in every gateway, with arguments of any `Encodable` types.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments, each converted with ``ValueEncoder``.
    ///   - keywordArguments: Named arguments, each converted with ``ValueEncoder``.
    /// - Returns: The channels, in gateway order.
    /// - Throws: As ``Gateway/remoteExec(_:arguments:keywordArguments:)``, plus `EncodingError`.
    @_disfavoredOverload
    public func remoteExec(
        _ task: String, arguments: [any Encodable], keywordArguments: OrderedDictionary<String, any Encodable> = [:]
    ) throws -> MultiChannel {
        let (positional, named) = try encodeArguments(arguments, keywordArguments)
        return try remoteExec(task, arguments: positional, keywordArguments: named)
    }

    /// Starts the same task in every gateway, with positional arguments of any `Encodable` types.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments, each converted with ``ValueEncoder``.
    /// - Returns: The channels, in gateway order.
    /// - Throws: As ``Gateway/remoteExec(_:arguments:keywordArguments:)``, plus `EncodingError`.
    @_disfavoredOverload
    public func remoteExec(_ task: String, _ arguments: any Encodable...) throws -> MultiChannel {
        try remoteExec(task, arguments: arguments)
    }

    /// Starts the same task, with positional arguments, in every gateway.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments.
    /// - Returns: The channels, in gateway order.
    /// - Throws: As ``Gateway/remoteExec(_:arguments:keywordArguments:)``.
    public func remoteExec(_ task: String, _ arguments: Value...) throws -> MultiChannel {
        try remoteExec(task, arguments: arguments)
    }

    // MARK: - Termination

    /// Terminates every gateway and empties the group.
    ///
    /// Asks every worker to exit, waits up to `timeout`, kills (SIGKILL) what is still alive, and
    /// ends every channel of every gateway that has not ended yet, so receive queues and callbacks
    /// get their endmarkers. Returns within `timeout` plus a small constant for the kills.
    ///
    /// - Parameter timeout: How long workers may take to exit before they are killed.
    /// - Returns: One report per gateway, in group order.
    @discardableResult
    public func terminate(timeout: Duration = .seconds(10)) async -> [TerminationReport] {
        let gateways = state.withLock { state -> [Gateway] in
            let taken = state.gateways
            state.gateways = []
            return taken
        }
        for gateway in gateways { gateway.exit() }
        let exits = await joinAll(gateways, timeout: timeout)
        let survivors = gateways.filter { exits[ObjectIdentifier($0)] == nil }
        for gateway in survivors { gateway.kill(signal: SIGKILL) }
        let killed = await joinAll(survivors, timeout: .seconds(2))
        var reports: [TerminationReport] = []
        for gateway in gateways {
            let key = ObjectIdentifier(gateway)
            if let exit = exits[key] {
                reports.append(TerminationReport(gatewayID: gateway.id, outcome: .exited(exit)))
                gateway.runtime.counters.recordTermination("exited")
            } else if let exit = killed[key] {
                reports.append(TerminationReport(gatewayID: gateway.id, outcome: .killed(exit)))
                gateway.runtime.counters.recordTermination("killed")
            } else {
                // Not reaped yet: its channels end now; it is not reported as gone.
                gateway.abandon()
                reports.append(TerminationReport(gatewayID: gateway.id, outcome: .stillRunning))
                gateway.runtime.counters.recordTermination("still_running")
            }
        }
        return reports
    }

    private func joinAll(_ gateways: [Gateway], timeout: Duration) async -> [ObjectIdentifier: WorkerExit] {
        await withTaskGroup(of: (ObjectIdentifier, WorkerExit?).self) { group in
            for gateway in gateways {
                group.addTask { (ObjectIdentifier(gateway), await gateway.join(timeout: timeout)) }
            }
            var result: [ObjectIdentifier: WorkerExit] = [:]
            for await (key, exit) in group { if let exit { result[key] = exit } }
            return result
        }
    }
}

extension Group: CustomStringConvertible {
    /// `<Group [gw0, gw1]>`.
    public var description: String {
        "<Group [\(gateways.map(\.id).joined(separator: ", "))]>"
    }
}

extension Group: Sequence {
    /// Iterates a snapshot of the gateways.
    public func makeIterator() -> IndexingIterator<[Gateway]> { gateways.makeIterator() }
}

/// The group that ``makeGateway(_:startupTimeout:)`` adds gateways to.
private let defaultGroup = Mutex<Group?>(nil)

/// The process's default group (execnet's `execnet.default_group`).
///
/// - Throws: ``ExecnetError`` `transport` if the embedded hub cannot start.
public func defaultGatewayGroup() throws -> Group {
    try defaultGroup.withLock { group in
        if let group { return group }
        let created = try Group()
        group = created
        return created
    }
}

/// Makes a gateway in the default group (execnet's `execnet.makegateway`).
///
/// - Parameters:
///   - spec: The gateway spec (default `popen`).
///   - startupTimeout: How long the worker may take to say hello.
/// - Returns: The running gateway.
/// - Throws: As ``Group/makeGateway(_:startupTimeout:)``.
public func makeGateway(_ spec: String? = nil, startupTimeout: Duration = .seconds(30)) async throws -> Gateway {
    try await defaultGatewayGroup().makeGateway(spec, startupTimeout: startupTimeout)
}
