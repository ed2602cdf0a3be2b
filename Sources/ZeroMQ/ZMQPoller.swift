// ZMQPoller: waits on sockets and plain file descriptors together with zmq_poll. It keeps one
// persistent zmq_pollitem_t array, so polling allocates nothing; results are read per index.
// Holds its sockets, so it belongs to the thread that owns them.

import CZeroMQ

/// Readiness of a socket or file descriptor, as polled or as ``ZMQSocket/events`` reports it.
///
/// - Important: A plain value; may be used from any thread.
public struct ZMQEvents: OptionSet, Sendable, Hashable {
    /// The `ZMQ_POLLIN`/`ZMQ_POLLOUT`/`ZMQ_POLLERR` bits.
    public let rawValue: Int32

    /// Creates a set from libzmq's poll bits.
    ///
    /// - Parameters:
    ///   - rawValue: A combination of `ZMQ_POLLIN`, `ZMQ_POLLOUT` and `ZMQ_POLLERR`.
    /// - Important: May be called from any thread.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// A message can be received, or the descriptor can be read, without blocking.
    public static let readable = ZMQEvents(rawValue: ZMQ_POLLIN)
    /// A message can be sent, or the descriptor can be written, without blocking.
    public static let writable = ZMQEvents(rawValue: ZMQ_POLLOUT)
    /// The file descriptor has an error condition (plain descriptors only).
    public static let error = ZMQEvents(rawValue: ZMQ_POLLERR)
}

/// What one call to ``ZMQPoller/poll(timeout:)`` came to.
///
/// - Important: A plain value; may be used from any thread.
public enum ZMQPollResult: Sendable, Hashable {
    /// `count` items are ready; read them with ``ZMQPoller/readyEvents(at:)``.
    case ready(count: Int)
    /// The timeout passed with nothing ready.
    case timedOut
    /// A signal interrupted the wait (`EINTR`); poll again after handling it.
    case interrupted
}

/// A set of sockets and file descriptors to wait on together.
///
/// Add every source once, remember the index it returns, then poll in the loop and read
/// each index's result:
///
/// ```swift
/// var poller = ZMQPoller()
/// let mailbox = poller.add(fileDescriptor: wakeFD, events: .readable)
/// let router = poller.add(routerSocket, events: .readable)
/// while running {
///     guard case .ready = try poller.poll(timeout: .milliseconds(100)) else { continue }
///     if poller.readyEvents(at: mailbox).contains(.readable) { handleMailbox() }
///     if poller.readyEvents(at: router).contains(.readable) { handleRouter() }
/// }
/// ```
///
/// The poller keeps its sockets alive. A socket must stay open while it is in a poller that is
/// still polled; polling a closed socket is a programming error and traps.
///
/// - Important: Not `Sendable`. Like its sockets, a poller is used only on their owning thread.
public struct ZMQPoller {
    /// What a poller waits on, for ``init(_:)``.
    public enum Item {
        /// A ZeroMQ socket and the events to wait for.
        case socket(ZMQSocket, ZMQEvents)
        /// A plain file descriptor (a pipe, an eventfd, a socket) and the events to wait for.
        case fileDescriptor(Int32, ZMQEvents)
    }

    // MARK: Owning thread only

    /// The array handed to `zmq_poll`, one entry per added source, reused on every poll.
    private var items: [zmq_pollitem_t] = []

    /// The socket behind each entry (`nil` for file descriptors), kept alive and checked open.
    private var sockets: [ZMQSocket?] = []

    /// Creates an empty poller.
    ///
    /// - Important: Create it on the thread that owns the sockets it will hold.
    public init() {}

    /// Creates a poller holding `items`, at indices 0, 1, 2, ... in order.
    ///
    /// - Parameters:
    ///   - items: The sources to wait on.
    /// - Important: Create it on the thread that owns the sockets it will hold.
    public init(_ items: [Item]) {
        for item in items {
            switch item {
            case .socket(let socket, let events): add(socket, events: events)
            case .fileDescriptor(let descriptor, let events): add(fileDescriptor: descriptor, events: events)
            }
        }
    }

    /// The number of sources added.
    ///
    /// - Returns: The count; valid indices are `0..<count`.
    /// - Important: Owning thread only.
    public var count: Int {
        items.count
    }

    /// Adds a socket to wait on.
    ///
    /// - Parameters:
    ///   - socket: An open socket owned by this thread; the poller keeps it alive.
    ///   - events: What to wait for; usually ``ZMQEvents/readable``. An empty set parks the item.
    /// - Returns: The item's index, for ``readyEvents(at:)`` and ``setEvents(_:at:)``.
    /// - Important: Owning thread only.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket, events: ZMQEvents) -> Int {
        precondition(!socket.isClosed, "A closed ZMQSocket cannot be added to a ZMQPoller.")
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: Int16(events.rawValue), revents: 0))
        sockets.append(socket)
        return items.count - 1
    }

    /// Adds a plain file descriptor to wait on.
    ///
    /// - Parameters:
    ///   - fileDescriptor: An open descriptor; the poller does not own or close it.
    ///   - events: What to wait for: ``ZMQEvents/readable``, ``ZMQEvents/writable``,
    ///     ``ZMQEvents/error``.
    /// - Returns: The item's index, for ``readyEvents(at:)`` and ``setEvents(_:at:)``.
    /// - Important: Owning thread only.
    @discardableResult
    public mutating func add(fileDescriptor: Int32, events: ZMQEvents) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fileDescriptor, events: Int16(events.rawValue), revents: 0))
        sockets.append(nil)
        return items.count - 1
    }

    /// Changes what the item at `index` waits for, for example adding ``ZMQEvents/writable``
    /// while output is pending.
    ///
    /// - Parameters:
    ///   - events: The new interest; an empty set parks the item.
    ///   - index: An index returned by `add`.
    /// - Important: Owning thread only.
    public mutating func setEvents(_ events: ZMQEvents, at index: Int) {
        items[index].events = Int16(events.rawValue)
    }

    /// Waits until an item is ready, the timeout passes, or a signal arrives.
    ///
    /// Allocates nothing. After ``ZMQPollResult/ready(count:)``, ``readyEvents(at:)`` tells what
    /// each item is ready for; after any other result every item reports no events.
    ///
    /// - Parameters:
    ///   - timeout: The longest wait, rounded up to milliseconds; `nil` waits forever and
    ///     `.zero` only checks.
    /// - Returns: ``ZMQPollResult/ready(count:)``, ``ZMQPollResult/timedOut`` or
    ///   ``ZMQPollResult/interrupted``.
    /// - Throws: ``ZMQError`` with `ETERM` when a socket's context is shutting down (close the
    ///   sockets and leave the loop), or another libzmq error.
    /// - Important: Owning thread only. Blocks the calling thread for up to `timeout`.
    public mutating func poll(timeout: Duration?) throws -> ZMQPollResult {
        for socket in sockets {
            if let socket {
                precondition(!socket.isClosed, "A ZMQSocket was closed while still in a ZMQPoller.")
            }
        }
        let milliseconds = timeout.map { Int($0.zmqMilliseconds) } ?? -1
        let outcome = try items.withUnsafeMutableBufferPointer { (buffer) throws(ZMQError) in
            try zmqInvoke("zmq_poll", reportInterrupts: true) {
                zmq_poll(buffer.baseAddress, Int32(buffer.count), milliseconds)
            }
        }
        switch outcome {
        case .success(0):
            return .timedOut
        case .success(let count):
            return .ready(count: Int(count))
        case .interrupted:
            clearReadyEvents()
            return .interrupted
        case .wouldBlock:
            // zmq_poll does not report EAGAIN; if it ever did, nothing became ready.
            clearReadyEvents()
            return .timedOut
        }
    }

    /// What the item at `index` was found ready for by the last ``poll(timeout:)``.
    ///
    /// - Parameters:
    ///   - index: An index returned by `add`.
    /// - Returns: The ready events; empty if the item was not ready.
    /// - Important: Owning thread only.
    public func readyEvents(at index: Int) -> ZMQEvents {
        ZMQEvents(rawValue: Int32(items[index].revents))
    }

    /// Forgets the results of an interrupted poll, which libzmq may have left half-written.
    private mutating func clearReadyEvents() {
        for index in items.indices {
            items[index].revents = 0
        }
    }
}

/// A poller holds sockets, which stay on their owning thread.
@available(*, unavailable, message: "A ZMQPoller holds sockets, which are used by the thread that created them.")
extension ZMQPoller: Sendable {}
