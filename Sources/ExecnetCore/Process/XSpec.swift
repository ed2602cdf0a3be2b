// Gateway specs in execnet's syntax: `popen//id=gw3//chdir=/tmp//env:NAME=value`. Parsing only.

import ExecnetValue
import OrderedCollections

/// A gateway specification, parsed with execnet's rules.
///
/// A spec is `key=value` or bare `key` parts joined by `//`. A bare key means `true`. Keys with a
/// leading underscore, and any key given twice, are errors. The gateway type is `popen` (a local
/// worker process) or `broker=ENDPOINT` (a worker on a host agent of that broker, optionally
/// `host=NAME`, with CURVE keys `serverkey=FILE` (the broker's public key) and `secretkey=FILE`
/// (this client's secret key)). Other keys: `id`, `chdir` (created if missing), `nice`,
/// `env:NAME=value`, `worker=PATH` (`worker=self` re-executes this program; see ``WorkerMain``).
/// `ssh=` and `socket=` are refused: gateways on other hosts go through a broker.
///
/// As in execnet, a key this port does not know is kept, not refused, so plugins can carry their
/// own settings in a spec: every key is readable by name (`spec["hello"]`).
public struct XSpec: Sendable, Hashable, CustomStringConvertible {
    /// The spec as written.
    public let text: String
    /// The gateway type (`popen` or `broker`).
    public let type: String
    /// The broker endpoint, for `broker=` gateways.
    public let broker: String?
    /// The host agent's name, for `broker=` gateways (any host with a free slot if `nil`).
    public let host: String?
    /// The file holding the broker's CURVE public key.
    public let serverKeyFile: String?
    /// The file holding this client's CURVE secret key.
    public let secretKeyFile: String?
    /// The gateway id, if the spec sets one (or ``Group/allocateID(_:)`` gave one).
    public package(set) var id: String?
    /// The working directory for the worker, created if missing.
    public let chdir: String?
    /// The niceness increment for the worker.
    public let nice: Int32?
    /// Environment variables set in the worker, in spec order.
    public let environment: OrderedDictionary<String, String>
    /// The worker executable, if the spec names one.
    public let worker: String?
    /// Every part of the spec by key, in spec order: `true` for a bare key, else the value as text.
    private let entries: OrderedDictionary<String, Value>

    /// Parses a spec.
    ///
    /// - Parameter text: The spec, e.g. `popen//id=w1//env:MODE=fast`.
    /// - Throws: ``ExecnetError`` `invalidSpec` naming the offending part.
    public init(_ text: String) throws {
        self.text = text
        var seen = Set<String>()
        var type: String?
        var id: String?, chdir: String?, nice: Int32?, worker: String?
        var broker: String?, host: String?, serverKeyFile: String?, secretKeyFile: String?
        var environment = OrderedDictionary<String, String>()
        var entries = OrderedDictionary<String, Value>()
        func fail(_ why: String) -> ExecnetError {
            ExecnetError(.invalidSpec, "invalid gateway spec '\(text)': \(why)")
        }
        // A value that is an endpoint (`broker=tcp://host:5555`) contains `//` itself: a part
        // ending in `scheme:` joins the part after it.
        var parts: [String] = []
        for piece in text.split(separator: "//", omittingEmptySubsequences: false).map(String.init) {
            if let last = parts.last, last.contains("="), last.hasSuffix("tcp:") || last.hasSuffix("ipc:") {
                parts[parts.count - 1] = last + "//" + piece
            } else {
                parts.append(piece)
            }
        }
        for part in parts {
            guard !part.isEmpty else { throw fail("empty part") }
            let key: String, value: String?
            if let eq = part.firstIndex(of: "=") {
                key = String(part[..<eq])
                value = String(part[part.index(after: eq)...])
            } else {
                key = part
                value = nil
            }
            guard !key.isEmpty else { throw fail("empty key in '\(part)'") }
            guard !key.hasPrefix("_") else { throw fail("keys may not start with '_' ('\(key)')") }
            guard seen.insert(key).inserted else { throw fail("duplicate key '\(key)'") }
            entries[key] = value.map { .string($0) } ?? .bool(true)
            if key.hasPrefix("env:") {
                let name = String(key.dropFirst(4))
                guard !name.isEmpty, !name.contains("=") else { throw fail("bad environment variable name in '\(part)'") }
                environment[name] = value ?? ""
                continue
            }
            switch key {
            case "popen":
                guard value == nil else { throw fail("popen takes no value") }
                guard type == nil else { throw fail("more than one gateway type") }
                type = "popen"
            case "python":
                throw fail("'python' does not apply: workers are Swift executables; use worker=PATH")
            case "ssh", "socket", "vagrant_ssh":
                throw fail("'\(key)' gateways are not supported here; for other hosts, use a broker gateway (see README: Running across hosts)")
            case "broker":
                guard let value, !value.isEmpty else { throw fail("broker needs an endpoint such as tcp://host:5555") }
                guard type == nil else { throw fail("more than one gateway type") }
                type = "broker"
                if value.hasPrefix("tcp://") || value.hasPrefix("ipc://") {
                    broker = value
                } else if value.contains(":"), !value.contains("/") {
                    broker = "tcp://" + value
                } else {
                    throw fail("broker needs an endpoint such as tcp://host:5555 or host:5555")
                }
            case "host":
                guard let value, !value.isEmpty else { throw fail("host needs a name") }
                host = value
            case "serverkey":
                guard let value, !value.isEmpty else { throw fail("serverkey needs a file") }
                serverKeyFile = value
            case "secretkey":
                guard let value, !value.isEmpty else { throw fail("secretkey needs a file") }
                secretKeyFile = value
            case "id":
                guard let value, !value.isEmpty else { throw fail("id needs a value") }
                id = value
            case "chdir":
                guard let value, !value.isEmpty else { throw fail("chdir needs a value") }
                chdir = value
            case "nice":
                guard let value, let parsed = Int32(value) else { throw fail("nice needs an integer") }
                nice = parsed
            case "worker":
                guard let value, !value.isEmpty else { throw fail("worker needs a path") }
                worker = value
            default:
                // Kept for whoever reads it (execnet's plugins do); it does not change the gateway.
                break
            }
        }
        guard let type else { throw fail("no gateway type (expected popen or broker=ENDPOINT)") }
        if type == "popen", host != nil || serverKeyFile != nil || secretKeyFile != nil {
            throw fail("host, serverkey and secretkey need broker=ENDPOINT")
        }
        if (serverKeyFile == nil) != (secretKeyFile == nil) {
            throw fail("serverkey and secretkey go together")
        }
        self.type = type
        self.broker = broker
        self.host = host
        self.serverKeyFile = serverKeyFile
        self.secretKeyFile = secretKeyFile
        self.id = id
        self.chdir = chdir
        self.nice = nice
        self.environment = environment
        self.worker = worker
        self.entries = entries
    }

    /// The value of any key of the spec, as execnet's `spec.key` reads it.
    ///
    /// A bare key reads as `true`, `key=value` as the text `value`, and a key the spec does not
    /// have as `nil` (execnet's `None`). Known and unknown keys alike: `spec["popen"]`,
    /// `spec["id"]`, `spec["env:NAME"]`, `spec["hello"]`. An id set by ``Group/allocateID(_:)``
    /// reads here too.
    ///
    /// - Parameter key: The key, as written in the spec.
    public subscript(key: String) -> Value? {
        if key == "id", let id { return .string(id) }
        return entries[key]
    }

    /// Every key of the spec, in spec order.
    public var keys: [String] {
        var keys = Array(entries.keys)
        if id != nil, !keys.contains("id") { keys.append("id") }
        return keys
    }

    public var description: String { text }
}
