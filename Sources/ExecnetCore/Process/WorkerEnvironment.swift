// The environment a worker process starts with, built the same way by popen gateways and host
// agents: what the spawner inherited (minus execnet's internal names), then the variables the
// client asked for (checked against one rule), then the spawner's own EXECNET_* settings
// (WorkerEnvironment.Settings, one list for both spawners), which always win.

#if canImport(Glibc)
import Glibc
#endif

import ExecnetValue

/// Builds worker environments and holds the rule for the variables a client may set.
package enum WorkerEnvironment {
    /// A variable the client asked for that the rule refuses.
    package struct Refusal: Error, Sendable, CustomStringConvertible {
        /// The variable's name as the client gave it.
        package let name: String
        /// Why it is refused.
        package let reason: String

        package init(name: String, reason: String) {
            self.name = name
            self.reason = reason
        }

        package var description: String { "environment variable \(name) is refused: \(reason)" }
    }

    /// Inherited `EXECNET_*` names a worker keeps: settings for people, not for the spawn protocol.
    package static let inheritedExecnetNames: Set<String> = ["EXECNET_DEBUG", "EXECNET_WORKER", "EXECNET_EXEC_DISABLED"]

    /// Names a client may never set: the dynamic loader's and libc's (glibc's list of variables
    /// it drops for setuid programs), shells' start-up and parsing variables (a worker may be a
    /// wrapper script), and the code-loading variables of common interpreters and runtimes.
    package static let refusedNames: Set<String> = [
        "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NIS_PATH",
        "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
        "PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH",
        "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYLIB", "RUBYOPT",
        "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
        "OPENSSL_CONF", "OPENSSL_ENGINES",
    ]

    /// Name prefixes a client may never set: execnet's own (the spawner's settings), the dynamic
    /// loader's, malloc's, and the Swift runtime's (its backtracer runs a program named there).
    package static let refusedPrefixes: [(prefix: String, reason: String)] = [
        ("EXECNET_", "EXECNET_* names are execnet's own settings for the worker"),
        ("LD_", "LD_* names control the dynamic loader"),
        ("MALLOC_", "MALLOC_* names control libc's allocator"),
        ("SWIFT_", "SWIFT_* names control the Swift runtime"),
    ]

    /// Why a client may not set the variable `name` in a worker's environment, or `nil` if it may.
    ///
    /// The one rule for popen gateways and host agents: a name is letters, digits and `_`, not
    /// starting with a digit; it is not execnet's own (`EXECNET_*`), the loader's (`LD_*`), the
    /// allocator's (`MALLOC_*`, `GLIBC_TUNABLES`), the Swift runtime's (`SWIFT_*`), nor in
    /// ``refusedNames``.
    package static func refusal(forClientVariable name: String) -> Refusal? {
        let bytes = Array(name.utf8)
        let portable = !bytes.isEmpty && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[0])
            && bytes.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            }
        guard portable else {
            return Refusal(name: name, reason: "a name is letters, digits and _, and does not start with a digit")
        }
        for (prefix, reason) in refusedPrefixes where name.hasPrefix(prefix) {
            return Refusal(name: name, reason: reason)
        }
        if refusedNames.contains(name) {
            return Refusal(name: name, reason: "it makes the loader, libc, a shell or an interpreter load code or configuration")
        }
        return nil
    }

    /// The environment for a worker.
    ///
    /// - Parameters:
    ///   - inherited: The spawner's environment (`NAME=value`); its `EXECNET_*` entries are dropped
    ///     except ``inheritedExecnetNames``.
    ///   - client: The variables the client asked for, in order; each must pass
    ///     ``refusal(forClientVariable:)``.
    ///   - own: The spawner's settings (`NAME=value`); they replace any entry of the same name.
    /// - Throws: The ``Refusal`` of the first variable the rule refuses.
    package static func build(inherited: [String], client: [(name: String, value: String)], own: [String]) throws(Refusal) -> [String] {
        for (name, _) in client {
            if let refusal = refusal(forClientVariable: name) { throw refusal }
        }
        func name(of entry: String) -> Substring { entry[..<(entry.firstIndex(of: "=") ?? entry.endIndex)] }
        let ownNames = Set(own.map(name(of:)))
        let clientNames = Set(client.map { Substring($0.name) })
        var environment = inherited.filter { entry in
            let entryName = name(of: entry)
            if entryName.hasPrefix("EXECNET_") && !inheritedExecnetNames.contains(String(entryName)) { return false }
            return !ownNames.contains(entryName) && !clientNames.contains(entryName)
        }
        // A name given twice keeps its last value.
        var position: [String: Int] = [:]
        for (name, value) in client {
            if let index = position[name] {
                environment[index] = "\(name)=\(value)"
            } else {
                position[name] = environment.count
                environment.append("\(name)=\(value)")
            }
        }
        environment += own
        return environment
    }

    /// The settings a spawner gives its worker: the `EXECNET_*` variables, the same names for a
    /// popen gateway's worker and a host agent's.
    package struct Settings: Sendable {
        /// Where the worker connects: the hub's ipc endpoint or the broker's.
        package var endpoint: String
        /// The worker's routing id (its address).
        package var routingID: [UInt8]
        /// The gateway id, for the worker's logs and output.
        package var gatewayID: String
        /// The directory the worker changes to (created if missing).
        package var chdir: String?
        /// The niceness increment.
        package var nice: Int64?
        /// Heartbeats with a broker; `nil` for a popen worker, which its client watches by pidfd.
        package var liveness: LivenessSettings?
        /// Whether the stock worker's `exec` task is off; `nil` says nothing (a host agent says).
        package var execDisabled: Bool?
        /// The broker's CURVE server key: the worker then reads its credential once from fd
        /// ``WorkerProcess/credentialFD``.
        package var curveServerKey: String?
        /// Whether the worker runs at the end of an ssh session: it exits when its stdin (the
        /// session's channel) reaches end of file, and has no spawner on its host to watch.
        package var sshSession = false

        /// Creates settings; the optional ones default to saying nothing.
        package init(endpoint: String, routingID: [UInt8], gatewayID: String, chdir: String? = nil, nice: Int64? = nil,
                     liveness: LivenessSettings? = nil, execDisabled: Bool? = nil, curveServerKey: String? = nil) {
            self.endpoint = endpoint
            self.routingID = routingID
            self.gatewayID = gatewayID
            self.chdir = chdir
            self.nice = nice
            self.liveness = liveness
            self.execDisabled = execDisabled
            self.curveServerKey = curveServerKey
        }

        /// The settings as `NAME=value` strings.
        package var variables: [String] {
            var own = [
                "EXECNET_WORKER_MODE=1",
                "EXECNET_ENDPOINT=\(endpoint)",
                "EXECNET_ROUTING_ID=\(String(decoding: routingID, as: UTF8.self))",
                "EXECNET_GATEWAY_ID=\(gatewayID)",
            ]
            // A worker over ssh has no spawner on its host: it watches its session's stdin instead.
            own.append(sshSession ? "EXECNET_SSH_SESSION=1" : "EXECNET_PARENT_PID=\(getpid())")
            if let liveness {
                own.append("EXECNET_HEARTBEAT_MS=\(liveness.interval.clampedMilliseconds)")
                own.append("EXECNET_LIVENESS=\(liveness.liveness)")
            }
            // The stock worker's exec task runs any command: a host agent allows it only with --allow-exec.
            if let execDisabled { own.append("EXECNET_EXEC_DISABLED=\(execDisabled ? 1 : 0)") }
            if let chdir { own.append("EXECNET_CHDIR=\(chdir)") }
            if let nice { own.append("EXECNET_NICE=\(nice)") }
            if let curveServerKey {
                own.append("EXECNET_CURVE_SERVER_KEY=\(curveServerKey)")
                own.append("EXECNET_CREDENTIAL_FD=\(WorkerProcess.credentialFD)")
            }
            return own
        }
    }

    /// The environment for a worker: this process's own (minus execnet's internal names), the
    /// client's variables if the rule allows each, then `settings`.
    ///
    /// - Throws: The ``Refusal`` of the first client variable the rule refuses.
    package static func build(client: [(name: String, value: String)], settings: Settings) throws(Refusal) -> [String] {
        try build(inherited: WorkerProcess.currentEnvironment(), client: client, own: settings.variables)
    }

    /// The client's variables as a SPAWN request carries them (`env`: a dict of strings), in order.
    ///
    /// - Throws: A ``Refusal`` if `env` is not a dict of strings.
    package static func clientVariables(_ env: Value?) throws(Refusal) -> [(name: String, value: String)] {
        switch env {
        case nil:
            return []
        case .dict(let extra)?:
            var client: [(name: String, value: String)] = []
            for (key, value) in extra {
                guard case .string(let name) = key, case .string(let text) = value else {
                    throw Refusal(name: "\(key)", reason: "names and values are strings")
                }
                client.append((name, text))
            }
            return client
        case let other?:
            throw Refusal(name: "\(other)", reason: "env is a dict of strings")
        }
    }
}
