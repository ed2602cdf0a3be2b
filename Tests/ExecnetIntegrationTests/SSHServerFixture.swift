// A real OpenSSH server for the ssh gateway tests: `sshd -D -e -f CONFIG` on 127.0.0.1 on a free
// port, with a generated host key, a generated user key, an authorized_keys file, the options a
// test server under /tmp needs (`StrictModes no`; the tests run as root, so `PermitRootLogin
// prohibit-password`), a pid file in its temporary directory, and a client configuration
// (`ssh_config=`) that trusts exactly this host key. If sshd is missing, the tests fail.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A started sshd, its keys, and the client configuration that reaches it.
final class SSHServer: Sendable {
    /// The sshd executable (it must be run with its absolute path).
    static let sshdPath = "/usr/sbin/sshd"

    /// The temporary directory with the keys, configurations and pid file.
    let directory: String
    /// The port sshd listens on, on 127.0.0.1.
    let port: Int
    /// The client configuration file: this port, the user key, known_hosts with this host key.
    let clientConfig: String
    private let process: Mutex<ChildProcess?>

    private static let shared = Mutex<SSHServer?>(nil)

    /// The server most ssh tests share, started on first use and stopped at exit.
    static func current() async throws -> SSHServer {
        if let server = shared.withLock({ $0 }) { return server }
        let server = try await SSHServer.start()
        let kept = shared.withLock { shared -> SSHServer in
            if let existing = shared { return existing }
            shared = server
            atexit { SSHServer.shared.withLock { $0 }?.stop() }
            return server
        }
        if kept !== server { server.stop() }
        return kept
    }

    /// The spec of a gateway to this server running `worker` (the test worker by default). The
    /// server is this machine, so the worker runs from its build path (`ssh_install=no`); the
    /// bundle's own tests go through the installer.
    func spec(_ extra: String = "", worker: String? = nil) -> String {
        "ssh=127.0.0.1//ssh_config=\(clientConfig)//ssh_install=no//worker=\(worker ?? buildDirectory() + "/ExecnetTestWorker")" + extra
    }

    /// Starts a server.
    ///
    /// - Parameter options: More sshd_config lines (they win over the defaults: sshd keeps the
    ///   first value of each option, so they are written first).
    static func start(options: [String] = []) async throws -> SSHServer {
        try await offPool { try SSHServer(options: options) }
    }

    private init(options: [String]) throws {
        guard access(Self.sshdPath, X_OK) == 0 else {
            throw ExecnetError(.workerNotFound, "\(Self.sshdPath) is missing: install openssh-server (see README's set-up line)")
        }
        var template = Array("/tmp/execnet-sshd-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw WorkerProcess.systemError("mkdtemp")
        }
        let directory = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.directory = directory
        // sshd refuses to start without its privilege separation directory.
        mkdir("/run/sshd", 0o755)
        for key in ["hostkey", "userkey"] {
            try runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "execnet-test", "-f", "\(directory)/\(key)"])
        }
        try sshWriteFile("\(directory)/authorized_keys", try sshReadFile("\(directory)/userkey.pub"))
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try freePort()
            let config = options + [
                "Port \(port)", "ListenAddress 127.0.0.1", "HostKey \(directory)/hostkey",
                "AuthorizedKeysFile \(directory)/authorized_keys", "StrictModes no", "PermitRootLogin prohibit-password",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
                "PidFile \(directory)/sshd.pid", "AllowStreamLocalForwarding yes", "MaxSessions 200", "MaxStartups 200",
                "LogLevel ERROR",
            ]
            try sshWriteFile("\(directory)/sshd_config", config.joined(separator: "\n") + "\n")
            let spawned = try WorkerProcess.spawn(executable: Self.sshdPath, arguments: ["-D", "-e", "-f", "\(directory)/sshd_config"],
                                                  environment: WorkerProcess.currentEnvironment())
            drainToStderr(spawned.stdout, name: "sshd")
            drainToStderr(spawned.stderr, name: "sshd")
            let child = ChildProcess(pid: spawned.pid, pidfd: spawned.pidfd)
            if waitForPort(port, child: child, within: .seconds(10)) {
                self.port = port
                self.process = Mutex(child)
                let hostKey = try sshReadFile("\(directory)/hostkey.pub")
                try sshWriteFile("\(directory)/known_hosts", "[127.0.0.1]:\(port) \(hostKey)")
                clientConfig = "\(directory)/ssh_config"
                try sshWriteFile(clientConfig, """
                    Host *
                      Port \(port)
                      IdentityFile \(directory)/userkey
                      IdentitiesOnly yes
                      UserKnownHostsFile \(directory)/known_hosts
                      GlobalKnownHostsFile /dev/null
                      StrictHostKeyChecking yes

                    """)
                return
            }
            stopChild(child, grace: .milliseconds(100))
            lastError = ExecnetError(.transport, "sshd did not listen on 127.0.0.1:\(port) within 10 s")
        }
        throw lastError ?? ExecnetError(.transport, "sshd did not start")
    }

    /// A client configuration like ``clientConfig`` with another identity file or known_hosts
    /// file, or another port.
    func variantConfig(_ name: String, identity: String? = nil, knownHosts: String? = nil, port: Int? = nil) throws -> String {
        let path = "\(directory)/\(name)_config"
        try sshWriteFile(path, """
            Host *
              Port \(port ?? self.port)
              IdentityFile \(identity ?? "\(directory)/userkey")
              IdentitiesOnly yes
              UserKnownHostsFile \(knownHosts ?? "\(directory)/known_hosts")
              GlobalKnownHostsFile /dev/null
              StrictHostKeyChecking yes

            """)
        return path
    }

    /// The pid of the listening sshd, while it runs.
    var pid: Int32? { process.withLock { $0?.pid } }

    /// Stops sshd and its connections (each runs in a session of its own, so each is killed by
    /// pid: the children of the listener); the workers of those sessions see their stdin end.
    func stop() {
        guard let child = process.withLock({ process -> ChildProcess? in
            defer { process = nil }
            return process
        }) else { return }
        for pid in childPIDs(of: child.pid) { kill(pid, SIGKILL) }
        stopChild(child, grace: .milliseconds(500))
    }

    /// Kills the per-connection sshd processes (the connections drop; the listener stays).
    func killConnections() {
        guard let pid else { return }
        for child in childPIDs(of: pid) { kill(child, SIGKILL) }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller retries if another takes it).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw WorkerProcess.systemError("socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
            bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
        }
    }
    guard bound else { throw WorkerProcess.systemError("bind") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts connections on 127.0.0.1:`port` within `bound` (false at once if
/// `child` exits first). Blocks the calling thread.
func waitForPort(_ port: Int, child: ChildProcess, within bound: Duration) -> Bool {
    let deadline = ContinuousClock.now.advanced(by: bound)
    while ContinuousClock.now < deadline {
        var pfd = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, 0) > 0 { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        close(fd)
        if connected { return true }
        usleep(20_000)  // The poll interval of a bounded wait, on a blocking caller's own thread.
    }
    return false
}

/// The pids whose parent is `parent` (from /proc).
func childPIDs(of parent: Int32) -> [Int32] {
    guard let dir = opendir("/proc") else { return [] }
    defer { closedir(dir) }
    var children: [Int32] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard let pid = Int32(name), let text = try? sshReadFile("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")") else { continue }
        let fields = text[text.index(after: close)...].split(separator: " ")
        if fields.count > 1, Int32(fields[1]) == parent { children.append(pid) }
    }
    return children
}

/// Runs a tool to its end; throws if it fails. Blocks the calling thread.
func runTool(_ executable: String, _ arguments: [String], input: [UInt8] = []) throws {
    let result = try runLocalCommand(executable: executable, arguments: arguments, input: input, outputLimit: 1 << 16)
    guard result.status == 0 else {
        throw ExecnetError(.transport, "\(executable) \(arguments.joined(separator: " ")) failed (\(result.status)): "
                           + String(decoding: result.stderr, as: UTF8.self))
    }
}

/// The text of a file (ssh tests).
func sshReadFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw WorkerProcess.systemError("open \(path)") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `text` to a new file (mode 0600; ssh tests).
func sshWriteFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw WorkerProcess.systemError("open \(path)") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
        throw WorkerProcess.systemError("write \(path)")
    }
}

/// Copies what `fd` gives to the test's stderr on a thread of its own, until its end.
func drainToStderr(_ fd: Int32, name: String) {
    OSThread(name: "test-drain") {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, -1)
            let count = read(fd, &buffer, buffer.count)
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { break }
            if count > 0 {
                let text = Array("[\(name)] ".utf8) + buffer[0..<count]
                _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            }
        }
        close(fd)
    }.detach()
}
