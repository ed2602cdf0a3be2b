// Tasks: Swift code registered by name in a worker executable, the Swift stand-in for execnet's
// source strings. A task gets its channel and arguments; it runs as an async function, or on a
// thread of its own when it blocks or burns CPU.

import ExecnetValue
import OrderedCollections

/// What a running task receives: its channel and the arguments of `remoteExec`.
public struct TaskContext: Sendable {
    /// The task's channel; items the client sends arrive here, items sent here reach the client.
    public let channel: Channel
    /// Positional arguments.
    public let arguments: [Value]
    /// Named arguments (execnet's kwargs).
    public let keywordArguments: OrderedDictionary<String, Value>
    /// The gateway id the client gave this worker.
    public let gatewayID: String

    /// The named argument `name`, or `nil`.
    public subscript(_ name: String) -> Value? { keywordArguments[name] }

    /// Opens a new channel to the client (an even id), to send inside a value; the client gets a
    /// channel it can receive from and send to, and the same object if it sends it back here.
    public func newChannel() -> Channel { channel.connection.newChannel() }
}

/// How a task runs in the worker.
public enum TaskExecution: Sendable {
    /// On Swift's cooperative pool, as an async function. It must not block a thread.
    case async(@Sendable (TaskContext) async throws -> Void)
    /// On a thread of its own, so blocking calls and CPU-bound work starve nobody. Use the channel's
    /// blocking API (`receiveBlocking`, `sendBlocking`).
    case thread(@Sendable (TaskContext) throws -> Void)
    /// As an async function on the worker's I/O thread: sends go straight to the socket and
    /// arriving items resume the task without a thread hop. It must not block and should not
    /// compute for long: while it runs, the worker serves no other channel and no heartbeat.
    case ioThread(@Sendable (TaskContext) async throws -> Void)
}

/// Tasks by name, for a worker to run.
public struct TaskRegistry: Sendable {
    private(set) var tasks: [String: TaskExecution] = [:]

    /// An empty registry.
    public init() {}

    /// Registers an async task under `name`, replacing any task of that name.
    ///
    /// - Parameters:
    ///   - name: The name clients pass to `remoteExec`.
    ///   - body: The task. Returning closes its channel; throwing closes it with the error, which
    ///     the client receives as ``RemoteError``.
    public mutating func register(_ name: String, _ body: @escaping @Sendable (TaskContext) async throws -> Void) {
        tasks[name] = .async(body)
    }

    /// Registers an async task that runs on the worker's I/O thread.
    ///
    /// For tasks that mostly move messages (an echo, a relay, a small computation per item): each
    /// message costs two thread wake-ups fewer each way than with ``register(_:_:)``. While such a
    /// task runs, the worker serves no other channel and no heartbeat, so it must never block and
    /// should hand long computations to a thread (``registerThread(_:_:)``) or a plain task.
    ///
    /// - Parameters:
    ///   - name: The name clients pass to `remoteExec`.
    ///   - body: The task. Returning closes its channel; throwing closes it with the error.
    public mutating func registerOnIOThread(_ name: String, _ body: @escaping @Sendable (TaskContext) async throws -> Void) {
        tasks[name] = .ioThread(body)
    }

    /// Registers a task that runs on a thread of its own.
    ///
    /// - Parameters:
    ///   - name: The name clients pass to `remoteExec`.
    ///   - body: The task; it may block.
    public mutating func registerThread(_ name: String, _ body: @escaping @Sendable (TaskContext) throws -> Void) {
        tasks[name] = .thread(body)
    }

    /// The task registered under `name`.
    public subscript(_ name: String) -> TaskExecution? { tasks[name] }

    /// The registered names, sorted.
    public var names: [String] { tasks.keys.sorted() }
}
