// The public Gateway: one worker process and the channels to the tasks running in it. Its
// lifecycle state (starting, running, exiting, exited) is behind a lock; the hub's I/O thread
// moves it forward on hello, bye and process exit.

import ExecnetCore
import ExecnetValue
import Logging
import OrderedCollections
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a worker says about itself in its hello.
public struct RemoteInfo: Sendable, Hashable {
    /// The worker's process id.
    public let pid: Int64
    /// The worker's working directory.
    public let cwd: String
    /// The worker host's name.
    public let hostname: String
    /// The worker's executable path.
    public let executable: String
    /// The worker's platform (`linux-x86_64`).
    public let platform: String
}

/// What a worker's status reply says (execnet's `remote_status()`).
public struct RemoteStatus: Sendable, Hashable {
    /// Channels open in the worker.
    public let channelCount: Int
    /// Tasks executing in the worker.
    public let executingCount: Int
}

/// A worker process and the channels to tasks running in it.
///
/// Gateways are made by ``Group/makeGateway(_:startupTimeout:)`` or ``makeGateway(_:startupTimeout:)``.
/// A gateway whose worker died stays usable for inspection: ``exitStatus`` says how it ended, and
/// its channels ended (``ExecnetError`` `endOfChannel`) with a ``PeerEnd`` cause naming how.
public final class Gateway: Sendable {
    enum Phase: Sendable {
        case starting
        case running
        case exiting
        case exited(WorkerExit)
    }
    struct State {
        var phase: Phase = .starting
        var pid: pid_t?
        var info: RemoteInfo?
        var startWaiter: CheckedContinuation<Void, any Error>?
        var startFailure: (any Error)?
        var byeReceived = false
        var exitWaiters: [(Int, CheckedContinuation<Void, Never>)] = []
        var exitRequested = false
        /// The host agent that started a broker gateway's worker.
        var agentHost: String?
        /// An ssh gateway's session: what to undo on a shared connection when it ends.
        var sshSession: SSHSession?
        /// The group that lists this gateway; ``exit()`` takes it out (as execnet's `_unregister`).
        weak var group: Group?
    }

    /// The gateway's id (`gw0`, or the spec's `id`).
    public let id: String
    /// The spec the gateway was made from.
    public let spec: XSpec
    let routingID: [UInt8]
    /// How the hub reaches the worker: decided once, from the spec's kind.
    let route: WorkerRoute
    let connection: PeerConnection
    let runtime: ClientRuntime
    let state = Mutex(State())
    private let waiterIDs = Atomic<Int>(0)
    /// The persistent channels of `call` (Tasks/Gateway+Call.swift), by task name.
    let typedCallers = Mutex<[String: TypedCaller]>([:])

    init(id: String, spec: XSpec, routingID: [UInt8], runtime: ClientRuntime, group: Group? = nil) {
        self.id = id
        self.spec = spec
        self.routingID = routingID
        self.runtime = runtime
        switch spec.kind {
        case .popen, .ssh: route = .local(routingID)
        case .broker(let binding): route = .broker(binding, address: routingID)
        }
        // A worker that breaks the protocol is killed by the hub, which sees the violation when it
        // hands the frame over (no handler here: the connection does not call back into the hub).
        self.connection = PeerConnection(gatewayID: id, side: .client, transport: HubTransport(hub: runtime.io, route: route),
                                         logger: runtime.logger)
        state.withLock { $0.group = group }
    }

    // MARK: - Tasks and channels

    /// Starts a task in the worker and returns the channel to it.
    ///
    /// - Parameters:
    ///   - task: The name the task is registered under in the worker.
    ///   - arguments: Positional arguments for the task.
    ///   - keywordArguments: Named arguments (execnet's kwargs).
    /// - Returns: The task's channel. An unknown task name ends it with a ``RemoteError`` naming the task.
    /// - Throws: ``ExecnetError`` `invalidState` if the gateway has exited or is exiting,
    ///   `unencodable` if an argument cannot be serialized.
    public func remoteExec(
        _ task: String, arguments: [Value], keywordArguments: OrderedDictionary<String, Value> = [:]
    ) throws -> Channel {
        try checkUsable()
        var keywords = ValueDictionary()
        for (key, value) in keywordArguments { keywords[.string(key)] = value }
        let payload = try connection.encode(.tuple([.string(task), .list(arguments), .dict(keywords)]))
        let channel = connection.newChannel(taskName: task)
        connection.send(WireMessage(channelID: channel.id, type: .exec, payload: payload))
        return channel
    }

    /// Starts a task with positional arguments.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments.
    /// - Returns: The task's channel.
    /// - Throws: As ``remoteExec(_:arguments:keywordArguments:)``.
    public func remoteExec(_ task: String, _ arguments: Value...) throws -> Channel {
        try remoteExec(task, arguments: arguments)
    }

    /// The number of this gateway's channels the client still has registered: open channels, and
    /// closed ones whose peer has not closed them yet.
    public var channelCount: Int { connection.openChannelCount }

    /// Opens a channel with no task behind it, to send over another channel.
    ///
    /// - Returns: The new channel.
    public func newChannel() -> Channel {
        connection.newChannel()
    }

    /// Asks the worker how many channels are open and tasks executing.
    ///
    /// The worker's I/O thread answers, so this works while every task is busy.
    ///
    /// - Parameter timeout: How long to wait for the answer.
    /// - Returns: The status.
    /// - Throws: ``ExecnetError`` `timeout`, `invalidState` if the gateway has exited.
    public func remoteStatus(timeout: Duration = .seconds(10)) async throws -> RemoteStatus {
        try checkUsable()
        let channel = connection.newChannel()
        connection.send(WireMessage(channelID: channel.id, type: .status, payload: []))
        let reply = try await channel.receive(timeout: timeout)
        // The worker's close follows its reply; waiting for it means this side's close has gone
        // out too, so a status asked next does not count this channel.
        try? await channel.waitClose(timeout: timeout)
        guard case .dict(let dict) = reply,
            case .int(let channels)? = dict[.string("numchannels")],
            case .int(let executing)? = dict[.string("numexecuting")]
        else {
            throw ExecnetError(.protocolViolation, "malformed status reply \(reply)", gatewayID: id)
        }
        return RemoteStatus(channelCount: Int(channels), executingCount: Int(executing))
    }

    /// What the worker said about itself at start-up.
    public var remoteInfo: RemoteInfo? { state.withLock { $0.info } }

    /// The worker's process id, once started.
    public var pid: Int32? { state.withLock { $0.pid } }

    /// How the worker ended, or `nil` while it runs.
    public var exitStatus: WorkerExit? {
        state.withLock { state in
            if case .exited(let exit) = state.phase { return exit }
            return nil
        }
    }

    /// Whether the worker is still running (or starting).
    public var isAlive: Bool { exitStatus == nil }

    private func checkUsable() throws {
        try state.withLock { state in
            switch state.phase {
            case .starting, .running: return
            case .exiting:
                throw ExecnetError(.invalidState, "gateway \(id) is exiting", gatewayID: id)
            case .exited(let exit):
                throw ExecnetError(.invalidState, "gateway \(id) has exited: worker \(exit)", gatewayID: id)
            }
        }
    }

    // MARK: - Exit

    /// Asks the worker to exit and takes the gateway out of its group. Its tasks are abandoned; its
    /// channels end.
    ///
    /// As execnet's `gateway.exit()`: the group no longer lists the gateway, so a later
    /// ``Group/terminate(timeout:)`` neither waits for it nor reports it. Returns at once;
    /// ``join(timeout:)`` waits for the process.
    public func exit() {
        let (send, group) = state.withLock { state -> (Bool, Group?) in
            state.exitRequested = true
            let group = state.group
            state.group = nil
            switch state.phase {
            case .starting, .running:
                state.phase = .exiting
                return (true, group)
            default:
                return (false, group)
            }
        }
        group?.remove(self)
        if send { connection.send(WireMessage(channelID: 0, type: .terminate, payload: [])) }
    }

    /// Sends a signal to the worker process (SIGKILL to kill it); on a broker gateway, its host
    /// agent sends it.
    ///
    /// - Parameter signal: The signal number.
    public func kill(signal: Int32 = SIGKILL) {
        runtime.io.submit(.kill(route, signal: signal))
    }

    /// Ends the channels of a gateway whose worker was killed but not reaped in time
    /// (``Group/terminate(timeout:)`` gives up on it): they end as terminated, and the gateway is
    /// not reported as gone. The hub still reaps the worker and reports its exit.
    func abandon() {
        connection.peerEnded(PeerEnd("gateway \(id) was terminated", gatewayID: id))
    }

    /// Waits until the worker process has exited.
    ///
    /// - Parameter timeout: How long to wait; `nil` waits indefinitely.
    /// - Returns: How the worker ended, or `nil` if it still runs after `timeout`.
    @discardableResult
    public func join(timeout: Duration? = nil) async -> WorkerExit? {
        let waiterID = waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let timer = TimerQueue.startWait(timeout.map { ContinuousClock.now.advanced(by: $0) }, on: runtime.io.timers) { [self] in
            releaseExitWaiter(waiterID)
        }
        defer { timer?.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if case .exited = state.phase { return true }
                state.exitWaiters.append((waiterID, continuation))
                return false
            }
            if done { continuation.resume() }
        }
        return exitStatus
    }

    private func releaseExitWaiter(_ waiterID: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let index = state.exitWaiters.firstIndex(where: { $0.0 == waiterID }) else { return nil }
            return state.exitWaiters.remove(at: index).1
        }
        waiter?.resume()
    }
}

extension Gateway: CustomStringConvertible {
    public var description: String {
        let phase: String = state.withLock { state in
            switch state.phase {
            case .starting: "starting"
            case .running: "running"
            case .exiting: "exiting"
            case .exited(let exit): "exited: \(exit)"
            }
        }
        return "<Gateway id=\(id) \(phase)>"
    }
}

extension Gateway: Hashable {
    public static func == (lhs: Gateway, rhs: Gateway) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// The transport of a client-side connection: the hub, which sends on its ROUTER (a popen
/// gateway) or on its link to the gateway's broker.
struct HubTransport: FrameTransport {
    let hub: IOThread<Hub>
    let route: WorkerRoute

    func submit(_ message: WireMessage) -> Bool {
        hub.submit(.send(route, message))
    }

    var isOnIOThread: Bool { hub.isCurrent }
    var timers: TimerQueue? { hub.timers }
}
