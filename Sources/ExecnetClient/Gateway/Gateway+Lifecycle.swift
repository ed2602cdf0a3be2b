// How a gateway moves through its life: launch and the wait for the worker's hello, then the
// events the hub posts (hello, bye, process exit) on the I/O thread. The gateway sends the hub
// commands (launch, send, kill); the hub answers only with these events, and handling one never
// sends anything back to the hub.

import ExecnetCore
import ExecnetValue
import OrderedCollections
#if canImport(Glibc)
import Glibc
#endif

/// What the hub tells a gateway about its worker, on the I/O thread.
///
/// One way only: the hub has already done what the event calls for (it kills a worker that broke
/// the protocol itself), and the gateway, handling the event, changes only its own state and ends
/// its own channels; it never sends to the hub in return.
enum GatewayEvent {
    /// The process started (for a broker gateway, on the host agent named `host`).
    case spawned(pid: pid_t, host: String?)
    /// The worker said hello.
    case hello(RemoteInfo)
    /// Start-up failed; the caller of ``Gateway/start(timeout:)`` gets the error.
    case startFailed(any Error)
    /// The worker said bye: everything it sent has arrived, and it is exiting.
    case bye
    /// The process has exited and was reaped (or, for a broker gateway, the broker says it is
    /// gone); `cause` is the text for its channels' ends (a default names the gateway and the exit).
    case exited(WorkerExit, cause: String?, stderr: [String] = [])
}

/// Everything the hub needs to ask a broker for a worker.
struct RemoteLaunch: Sendable {
    let gateway: Gateway
    let link: BrokerBinding
    let keys: CurveClientKeys?
    /// The SPAWN payload.
    let request: [UInt8]
}

/// Everything the hub needs to start a worker for a gateway.
struct WorkerLaunch: Sendable {
    let gateway: Gateway
    let executable: String
    let environment: [String]
    /// The program's arguments (an ssh gateway's `ssh` command line).
    var arguments: [String] = []
    /// Whether the process's stdin is a pipe the hub holds open until it exits (an ssh gateway's
    /// `ssh`, whose remote session ends when this process dies).
    var holdsStdin = false
}

extension Gateway {
    /// Starts the worker and waits for its hello.
    ///
    /// - Throws: ``ExecnetError`` `timeout` if no hello came in time (the process is killed),
    ///   `workerDied` if it exited first, `protocolVersionMismatch`, `workerNotFound`, `transport`.
    func start(timeout: Duration) async throws {
        if case .broker(let binding) = spec.kind {
            try await startRemote(binding, timeout: timeout)
            return
        }
        if case .ssh(let target) = spec.kind {
            try await startSSH(target, timeout: timeout)
            return
        }
        let executable = try WorkerProcess.resolveExecutable(spec: spec)
        let settings = WorkerEnvironment.Settings(
            endpoint: runtime.endpoint, routingID: routingID, gatewayID: id, chdir: spec.chdir, nice: spec.nice.map(Int64.init))
        let environment: [String]
        do {
            environment = try WorkerEnvironment.build(
                client: spec.environment.map { (name: $0.key, value: $0.value) }, settings: settings)
        } catch {
            throw ExecnetError(.invalidSpec, "env:\(error.name) is refused: \(error.reason)", gatewayID: id)
        }
        let launch = WorkerLaunch(gateway: self, executable: executable, environment: environment)
        try await awaitHello(timeout: timeout) { [runtime] in runtime.io.submit(.launch(launch)) }
    }

    /// Asks the broker for a worker on one of its hosts and waits for the worker's hello.
    private func startRemote(_ binding: BrokerBinding, timeout: Duration) async throws {
        var keys: CurveClientKeys?
        if let serverKeyFile = binding.serverKeyFile, let secretKeyFile = binding.secretKeyFile {
            keys = CurveClientKeys(serverKey: try loadCurvePublicKey(serverKeyFile),
                                   keyPair: try CurveKeyPair.load(secretKeyFile: secretKeyFile))
        }
        var request = ControlPayload()
        request["address"] = .bytes(routingID)
        request["gateway"] = .string(id)
        if let host = spec.host { request["host"] = .string(host) }
        if let chdir = spec.chdir { request["chdir"] = .string(chdir) }
        if let nice = spec.nice { request["nice"] = .int(Int64(nice)) }
        if let worker = spec.worker { request["worker"] = .string(worker) }
        var environment = ValueDictionary()
        for (name, value) in spec.environment { environment[.string(name)] = .string(value) }
        request["env"] = .dict(environment)
        let launch = RemoteLaunch(gateway: self, link: binding, keys: keys, request: request.encoded)
        try await awaitHello(timeout: timeout) { [runtime] in runtime.io.submit(.launchRemote(launch)) }
    }

    /// Registers as the start waiter, runs `submit`, and waits for the hello, a failure or the timeout.
    func awaitHello(timeout: Duration, submit: @escaping @Sendable () -> Bool) async throws {
        let timer = TimerQueue.startWait(.now.advanced(by: timeout), on: runtime.io.timers) { [self] in startTimedOut(timeout) }
        defer { timer?.cancel() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            state.withLock { $0.startWaiter = continuation }
            if !submit() {
                failStart(ExecnetError(.invalidState, "the execnet runtime has shut down", gatewayID: id))
            }
        }
    }

    private func startTimedOut(_ timeout: Duration) {
        let stillStarting = state.withLock { state -> Bool in
            if case .starting = state.phase { return state.startWaiter != nil }
            return false
        }
        guard stillStarting else { return }
        failStart(ExecnetError(.timeout, "worker did not say hello within \(timeout)", gatewayID: id))
        kill(signal: SIGKILL)
    }

    // MARK: - From the hub (I/O thread)

    /// Takes an event from the hub (see ``GatewayEvent``).
    func post(_ event: GatewayEvent) {
        switch event {
        case .spawned(let pid, let host): spawned(pid: pid, host: host)
        case .hello(let info): helloReceived(info)
        case .startFailed(let error): failStart(error)
        case .bye: byeReceived()
        case .exited(let exit, let cause, let stderr): processExited(exit, cause: cause, stderr: stderr)
        }
    }

    private func spawned(pid: pid_t, host: String?) {
        state.withLock { state in
            state.pid = pid
            if let host { state.agentHost = host }
        }
    }

    /// Start-up failed; the caller of ``start(timeout:)`` gets `error`.
    private func failStart(_ error: any Error) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.startFailure = state.startFailure ?? error
            defer { state.startWaiter = nil }
            return state.startWaiter
        }
        waiter?.resume(throwing: error)
    }

    private func helloReceived(_ info: RemoteInfo) {
        runtime.counters.gatewaysStarted.wrappingAdd(1, ordering: .relaxed)
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.info = info
            if case .starting = state.phase { state.phase = .running }
            defer { state.startWaiter = nil }
            return state.startWaiter
        }
        waiter?.resume()
    }

    private func byeReceived() {
        let requested = state.withLock { state -> Bool in
            state.byeReceived = true
            if case .running = state.phase { state.phase = .exiting }
            return state.exitRequested
        }
        connection.peerEnded(PeerEnd(
            requested ? "gateway \(id) was terminated" : "the worker of gateway \(id) exited on its own", gatewayID: id))
    }

    private func processExited(_ exit: WorkerExit, cause: String?, stderr: [String]) {
        var (exit, cause, sshFailure): (WorkerExit, String?, SSHError?) = (exit, cause, nil)
        if case .ssh(let target) = spec.kind { (exit, cause, sshFailure) = sshEnded(target, exit, cause: cause, stderr: stderr) }
        let (waiters, bye, startWaiter) = state.withLock { state in
            state.phase = .exited(exit)
            let waiters = state.exitWaiters.map(\.1)
            state.exitWaiters = []
            let startWaiter = state.startWaiter
            state.startWaiter = nil
            return (waiters, state.byeReceived || state.exitRequested, startWaiter)
        }
        startWaiter?.resume(throwing: sshFailure ?? ExecnetError(
            .workerDied, "\(cause ?? "worker \(exit)") before it said hello", gatewayID: id))
        if bye {
            connection.peerEnded(PeerEnd("gateway \(id) was terminated", gatewayID: id, exit: exit, stderr: stderr))
        } else {
            connection.peerEnded(PeerEnd(cause ?? "worker of gateway \(id) \(exit)", gatewayID: id, exit: exit, stderr: stderr))
        }
        for waiter in waiters { waiter.resume() }
        runtime.untrack(self)
    }
}
