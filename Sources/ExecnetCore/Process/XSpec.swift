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
/// `ssh=[user@]host` starts the worker over the system's OpenSSH client (the value is split on
/// white space into ssh arguments, so `ssh=-p 2222 host` works), with `ssh_config=FILE` and
/// `ssh_reuse=SECONDS|no` (see ``SSHTarget``) and `ssh_install=no`. `python=` is accepted and ignored (specs written for
/// execnet and pytest-xdist parse). `socket=` is refused.
///
/// As in execnet, a key this port does not know is kept, not refused, so plugins can carry their
/// own settings in a spec: every key is readable by name (`spec["hello"]`).
public struct XSpec: Sendable, Hashable, CustomStringConvertible {
    /// Where a gateway's worker runs: decided once, when the spec is parsed, and passed along as is.
    public enum Kind: Sendable, Hashable {
        /// A worker process this client starts.
        case popen
        /// A worker on a host agent of a broker, reached with these key files.
        case broker(BrokerBinding)
        /// A worker on another host, started over ssh.
        case ssh(SSHTarget)
    }

    /// The spec as written.
    public let text: String
    /// Where the worker runs.
    public let kind: Kind
    /// The gateway type (`popen` or `broker`).
    public var type: String {
        switch kind {
        case .popen: "popen"
        case .broker: "broker"
        case .ssh: "ssh"
        }
    }
    /// The broker endpoint, for `broker=` gateways.
    public var broker: String? { binding?.endpoint }
    /// The host agent's name, for `broker=` gateways (any host with a free slot if `nil`).
    public let host: String?
    /// The file holding the broker's CURVE public key.
    public var serverKeyFile: String? { binding?.serverKeyFile }
    /// The file holding this client's CURVE secret key.
    public var secretKeyFile: String? { binding?.secretKeyFile }
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

    /// The ssh target, for `ssh=` gateways.
    public var ssh: SSHTarget? {
        if case .ssh(let target) = kind { return target }
        return nil
    }

    private var binding: BrokerBinding? {
        if case .broker(let binding) = kind { return binding }
        return nil
    }

    /// Parses a spec.
    ///
    /// - Parameter text: The spec, e.g. `popen//id=w1//env:MODE=fast`.
    /// - Throws: ``ExecnetError`` `invalidSpec` naming the offending part.
    public init(_ text: String) throws {
        try self.init(text: text, Parts(text))
    }

    /// Parses a spec as a group reads it: one that names no gateway type gets the parts of the
    /// group's default spec in front of its own (and an empty one is the default spec).
    ///
    /// - Parameters:
    ///   - text: The spec, e.g. `id=w1`.
    ///   - defaults: The group's default spec, asked for only when `text` names no type.
    /// - Throws: ``ExecnetError`` `invalidSpec`, or what `defaults` throws.
    package init(_ text: String, defaults: () throws -> XSpec) throws {
        if text.isEmpty {
            self = try defaults()
            return
        }
        let own = try Parts(text)
        if own.type != nil {
            try self.init(text: text, own)
            return
        }
        let base = try defaults()
        let combined = base.text + "//" + text
        try self.init(text: combined, base.parts.merged(with: own, text: combined))
    }

    /// A spec that sends gateways to `broker` (a group's default spec).
    ///
    /// - Throws: ``ExecnetError`` `invalidSpec` for an endpoint that is not one.
    package init(broker: BrokerBinding) throws {
        var parts = Parts(text: broker.specPrefix)
        try parts.add("broker", broker.endpoint)
        if let file = broker.serverKeyFile { try parts.add("serverkey", file) }
        if let file = broker.secretKeyFile { try parts.add("secretkey", file) }
        try self.init(text: broker.specPrefix, parts)
    }

    /// The parts of the spec as parsed: what the initializers above combine.
    private var parts: Parts {
        // Rebuilt from the typed fields, never from text.
        var parts = Parts(text: text)
        parts.type = type
        parts.broker = broker
        parts.ssh = ssh
        parts.host = host
        parts.serverKeyFile = serverKeyFile
        parts.secretKeyFile = secretKeyFile
        parts.id = entries["id"] == nil ? nil : id
        parts.chdir = chdir
        parts.nice = nice
        parts.worker = worker
        parts.environment = environment
        parts.entries = entries
        return parts
    }

    private init(text: String, _ parts: Parts) throws {
        func fail(_ why: String) -> ExecnetError {
            ExecnetError(.invalidSpec, "invalid gateway spec '\(text)': \(why)")
        }
        guard let type = parts.type else { throw fail("no gateway type (expected popen, ssh=HOST or broker=ENDPOINT)") }
        if type != "ssh", parts.sshConfig != nil || parts.sshReuse != nil {
            throw fail("ssh_config and ssh_reuse need ssh=HOST")
        }
        if type != "broker", parts.host != nil || parts.serverKeyFile != nil || parts.secretKeyFile != nil {
            throw fail("host, serverkey and secretkey need broker=ENDPOINT")
        }
        if (parts.serverKeyFile == nil) != (parts.secretKeyFile == nil) {
            throw fail("serverkey and secretkey go together")
        }
        self.text = text
        if let endpoint = parts.broker {
            self.kind = .broker(BrokerBinding(endpoint: endpoint, serverKeyFile: parts.serverKeyFile,
                                              secretKeyFile: parts.secretKeyFile))
        } else if var target = parts.ssh {
            target.configFile = parts.sshConfig
            if let reuse = parts.sshReuse { target.reuse = reuse }
            self.kind = .ssh(target)
        } else {
            self.kind = .popen
        }
        self.host = parts.host
        self.id = parts.id
        self.chdir = parts.chdir
        self.nice = parts.nice
        self.environment = parts.environment
        self.worker = parts.worker
        self.entries = parts.entries
    }

    /// The parts of a spec, read with execnet's rules; the gateway type may be missing.
    private struct Parts {
        /// The text errors name.
        let text: String
        var type: String?
        var broker: String?, host: String?, serverKeyFile: String?, secretKeyFile: String?
        var ssh: SSHTarget?, sshConfig: String?, sshReuse: Duration??
        var id: String?, chdir: String?, nice: Int32?, worker: String?
        var environment = OrderedDictionary<String, String>()
        var entries = OrderedDictionary<String, Value>()

        init(text: String) {
            self.text = text
        }

        /// Reads every part of `text`.
        init(_ text: String) throws {
            self.init(text: text)
            // A value that is an endpoint (`broker=tcp://host:5555`) contains `//` itself: a part
            // ending in `scheme:` joins the part after it.
            var pieces: [String] = []
            for piece in text.split(separator: "//", omittingEmptySubsequences: false).map(String.init) {
                if let last = pieces.last, last.contains("="), last.hasSuffix("tcp:") || last.hasSuffix("ipc:") {
                    pieces[pieces.count - 1] = last + "//" + piece
                } else {
                    pieces.append(piece)
                }
            }
            for piece in pieces {
                guard !piece.isEmpty else { throw fail("empty part") }
                if let eq = piece.firstIndex(of: "=") {
                    try add(String(piece[..<eq]), String(piece[piece.index(after: eq)...]), part: piece)
                } else {
                    try add(piece, nil, part: piece)
                }
            }
        }

        func fail(_ why: String) -> ExecnetError {
            ExecnetError(.invalidSpec, "invalid gateway spec '\(text)': \(why)")
        }

        /// `base`'s parts, then `own`'s (which name no gateway type); a key in both is an error.
        func merged(with own: Parts, text: String) throws -> Parts {
            var merged = self
            for (key, value) in own.entries {
                guard merged.entries[key] == nil else {
                    throw ExecnetError(.invalidSpec, "invalid gateway spec '\(text)': duplicate key '\(key)'")
                }
                merged.entries[key] = value
            }
            merged.sshConfig = own.sshConfig ?? sshConfig
            merged.sshReuse = own.sshReuse ?? sshReuse
            merged.host = own.host ?? host
            merged.serverKeyFile = own.serverKeyFile ?? serverKeyFile
            merged.secretKeyFile = own.secretKeyFile ?? secretKeyFile
            merged.id = own.id ?? id
            merged.chdir = own.chdir ?? chdir
            merged.nice = own.nice ?? nice
            merged.worker = own.worker ?? worker
            merged.environment.merge(own.environment) { _, new in new }
            return merged
        }

        /// Reads one part: `key=value`, or a bare `key` (`value` `nil`).
        mutating func add(_ key: String, _ value: String?, part: String? = nil) throws {
            let part = part ?? value.map { "\(key)=\($0)" } ?? key
            guard !key.isEmpty else { throw fail("empty key in '\(part)'") }
            guard !key.hasPrefix("_") else { throw fail("keys may not start with '_' ('\(key)')") }
            guard entries[key] == nil else { throw fail("duplicate key '\(key)'") }
            entries[key] = value.map { .string($0) } ?? .bool(true)
            if key.hasPrefix("env:") {
                let name = String(key.dropFirst(4))
                guard !name.isEmpty, !name.contains("=") else { throw fail("bad environment variable name in '\(part)'") }
                environment[name] = value ?? ""
                return
            }
            switch key {
            case "popen":
                guard value == nil else { throw fail("popen takes no value") }
                guard type == nil else { throw fail("more than one gateway type") }
                type = "popen"
            case "python":
                // Accepted so that execnet's and pytest-xdist's specs parse; the gateway logs that it
                // ignores it (workers are Swift executables: worker=PATH picks one).
                break
            case "ssh":
                guard let value else { throw fail("ssh needs a host such as user@host") }
                guard type == nil else { throw fail("more than one gateway type") }
                let arguments = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard let last = arguments.last, !last.hasPrefix("-") else { throw fail("ssh needs a host such as user@host") }
                type = "ssh"
                ssh = SSHTarget(arguments: arguments)
            case "ssh_config":
                guard let value, !value.isEmpty else { throw fail("ssh_config needs a file") }
                sshConfig = value
            case "ssh_reuse":
                guard let value else { throw fail("ssh_reuse needs a number of seconds or no") }
                if value == "no" {
                    sshReuse = .some(nil)
                } else if let seconds = Int64(value), seconds > 0 {
                    sshReuse = .some(.seconds(seconds))
                } else {
                    throw fail("ssh_reuse needs a number of seconds (more than 0) or no")
                }
            case "socket", "vagrant_ssh":
                throw fail("'\(key)' gateways are not supported here; use ssh=HOST, or a broker gateway (see README: Running across hosts)")
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
