// The parts of a gateway's API that execnet code ports call for call: remote_exec with any
// Codable arguments, _rinfo(update=True) and remoteaddress.

import ExecnetCore
import ExecnetValue
import OrderedCollections

extension RemoteInfo {
    /// Reads the fields of a hello or of the `info` task's reply; a missing field reads as empty.
    init(fields dict: ValueDictionary) {
        func text(_ key: String) -> String {
            if case .string(let value)? = dict[.string(key)] { return value }
            return ""
        }
        var pid: Int64 = 0
        if case .int(let value)? = dict[.string("pid")] { pid = value }
        self.init(pid: pid, cwd: text("cwd"), hostname: text("hostname"), executable: text("executable"),
                  platform: text("platform"))
    }
}

/// Where a broker gateway's worker is reached (execnet's `gateway.remoteaddress`).
public struct RemoteAddress: Sendable, Hashable, CustomStringConvertible {
    /// The broker endpoint the gateway's messages go through, e.g. `tcp://broker:5555`.
    public let broker: String
    /// The name of the host agent that started the worker, once the broker has said (its report
    /// travels apart from the worker's hello, so it may follow the gateway's start by a moment).
    public let host: String?

    /// `tcp://broker:5555 (host h1)`.
    public var description: String { host.map { "\(broker) (host \($0))" } ?? broker }
}

extension Gateway {
    /// Starts a task with arguments of any `Encodable` types, converted with ``ValueEncoder``.
    ///
    /// `remoteExec("scale", 2.5, Point(x: 1, y: 2))`: each argument becomes a ``Value``
    /// (a ``Value`` stays as it is), so a task receives structs as dicts.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments.
    /// - Returns: The task's channel.
    /// - Throws: As ``remoteExec(_:arguments:keywordArguments:)``, plus `EncodingError`.
    @_disfavoredOverload
    public func remoteExec(_ task: String, _ arguments: any Encodable...) throws -> Channel {
        try remoteExec(task, arguments: arguments.map { try ValueEncoder().encode($0) })
    }

    /// Starts a task with positional and named arguments of any `Encodable` types.
    ///
    /// - Parameters:
    ///   - task: The task's registered name.
    ///   - arguments: Positional arguments, each converted with ``ValueEncoder``.
    ///   - keywordArguments: Named arguments, each converted with ``ValueEncoder``.
    /// - Returns: The task's channel.
    /// - Throws: As ``remoteExec(_:arguments:keywordArguments:)``, plus `EncodingError`.
    @_disfavoredOverload
    public func remoteExec(
        _ task: String, arguments: [any Encodable], keywordArguments: OrderedDictionary<String, any Encodable> = [:]
    ) throws -> Channel {
        let (positional, named) = try encodeArguments(arguments, keywordArguments)
        return try remoteExec(task, arguments: positional, keywordArguments: named)
    }

    /// What the worker says about itself, asked again if `update` is true (execnet's `_rinfo`).
    ///
    /// Without `update` this is the cached answer (the hello's, until an update). With `update` the
    /// worker's built-in `info` task runs and its answer replaces the cache, so a task's `chdir`
    /// shows in ``RemoteInfo/cwd``. The worker needs the built-in tasks (``TaskRegistry/builtins``).
    ///
    /// - Parameters:
    ///   - update: Whether to ask the worker again.
    ///   - timeout: How long to wait for the answer.
    /// - Returns: The worker's identity.
    /// - Throws: ``ExecnetError`` `invalidState` if the gateway has exited, `timeout`,
    ///   `protocolViolation` for a reply that is not a dict; ``RemoteError`` if the worker has no
    ///   `info` task.
    public func remoteInfo(update: Bool, timeout: Duration = .seconds(10)) async throws -> RemoteInfo {
        if !update, let cached = remoteInfo { return cached }
        let channel = try remoteExec("info")
        let reply = try await channel.receive(timeout: timeout)
        guard case .dict(let fields) = reply else {
            throw ExecnetError(.protocolViolation, "malformed info reply \(reply)", gatewayID: id)
        }
        let info = RemoteInfo(fields: fields)
        state.withLock { $0.info = info }
        return info
    }

    /// Where a broker gateway's worker is reached: the broker endpoint and, once the broker has
    /// said, the host agent's name; `nil` for a `popen` gateway (execnet's `remoteaddress`, which
    /// only socket gateways have).
    public var remoteAddress: RemoteAddress? {
        guard case .broker(let binding) = spec.kind else { return nil }
        return RemoteAddress(broker: binding.endpoint, host: state.withLock { $0.agentHost })
    }
}

/// Converts `remoteExec` arguments of any `Encodable` types to values.
func encodeArguments(
    _ arguments: [any Encodable], _ keywordArguments: OrderedDictionary<String, any Encodable>
) throws -> ([Value], OrderedDictionary<String, Value>) {
    let encoder = ValueEncoder()
    let positional = try arguments.map { try encoder.encode($0) }
    var named = OrderedDictionary<String, Value>()
    for (key, value) in keywordArguments { named[key] = try encoder.encode(value) }
    return (positional, named)
}
