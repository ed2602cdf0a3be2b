// ssh gateways against a real OpenSSH server (SSHServerFixture): tasks through the forwarded Unix
// socket, terminate, output, deaths and their causes, no orphans when the client, the ssh client
// or the connection dies, and each ssh failure as a typed error with ssh's own text.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The worker's pid on the remote host (this machine in the tests) from its hello.
private func remotePID(_ gateway: Gateway) throws -> Int32 {
    Int32(try #require(gateway.remoteInfo?.pid))
}

/// Asserts that `body` throws an ``SSHError`` with `code` whose message contains `text`.
func expectSSHError<T>(_ code: SSHError.Code, containing text: String, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () async throws -> T) async {
    do {
        _ = try await body()
        Issue.record("expected SSHError.\(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SSHError {
        #expect(error.code == code, "expected \(code), got \(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(text), "ssh's text is missing '\(text)': \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected SSHError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}

/// The socket inodes of a process's open descriptors.
private func socketInodes(_ pid: Int32) -> Set<String> {
    guard let dir = opendir("/proc/\(pid)/fd") else { return [] }
    defer { closedir(dir) }
    var inodes: Set<String> = []
    var buffer = [CChar](repeating: 0, count: 256)
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let count = readlink("/proc/\(pid)/fd/\(name)", &buffer, buffer.count - 1)
        guard count > 0 else { continue }
        let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix("socket:[") { inodes.insert(String(target.dropFirst(8).dropLast())) }
    }
    return inodes
}

/// The inodes listed in a /proc/net table (tcp, tcp6, unix).
private func netInodes(_ table: String) -> Set<String> {
    guard let text = try? sshReadFile("/proc/net/\(table)") else { return [] }
    var inodes: Set<String> = []
    for line in text.split(separator: "\n").dropFirst() {
        let fields = line.split(separator: " ")
        // tcp: the inode is the 10th field; unix: the 7th.
        let index = table == "unix" ? 6 : 9
        if fields.count > index { inodes.insert(String(fields[index])) }
    }
    return inodes
}

extension ProcessTests {
    @Suite struct SSHGatewayTests {
        @Test func aGatewayOverSSHRunsTasksThroughTheForwardedSocket() async throws {
            let server = try await SSHServer.current()
            let group = try Group()
            let gateway = try await group.makeGateway(server.spec("//id=far//env:SSH_TEST=yes//python=python3"))
            #expect(gateway.spec.type == "ssh" && gateway.spec.ssh?.destination == "127.0.0.1")
            let sshPID = try #require(gateway.pid)
            let workerPID = try remotePID(gateway)
            #expect(sshPID != workerPID, "the gateway's process is the ssh client, the worker is remote")
            let echo = try gateway.remoteExec("plus-one")
            try await echo.send(41)
            #expect(try await echo.receive(timeout: .seconds(10)) == 42)
            // The worker's environment: the client's variable, and the endpoint of the forwarded socket.
            let exec = try gateway.remoteExec("exec", .list(["/bin/sh", "-c", "printf '%s %s' \"$SSH_TEST\" \"$EXECNET_ENDPOINT\""]))
            var output: [UInt8] = []
            for try await item in exec {
                if case .tuple(let parts) = item, parts.first == "stdout", case .bytes(let chunk) = parts[1] { output += chunk }
            }
            let words = String(decoding: output, as: UTF8.self).split(separator: " ")
            #expect(words.first == "yes")
            #expect(words.last?.hasPrefix("ipc:///") == true && words.last?.hasSuffix(".sock") == true, "\(words)")
            // No TCP socket in the worker: only Unix sockets (the forwarded one among them).
            let sockets = socketInodes(workerPID)
            #expect(!sockets.isEmpty)
            #expect(sockets.isDisjoint(with: netInodes("tcp").union(netInodes("tcp6"))), "the worker has a TCP socket")
            #expect(sockets.isSubset(of: netInodes("unix")))
            await group.terminate(timeout: .seconds(5))
            #expect(gateway.exitStatus == .exited(0))
            #expect(await waitUntilGone([sshPID, workerPID]))
        }

        @Test func theStockWorkerIsShippedAsABundleOnce() async throws {
            let server = try await SSHServer.current()
            let spec = "ssh=127.0.0.1//ssh_config=\(server.clientConfig)//worker=\(buildDirectory())/execnet-worker"
            let group = try await Group([spec, spec])
            for gateway in group {
                let executable = try #require(gateway.remoteInfo?.executable)
                // Run from the remote per-user cache, not from the build directory.
                #expect(!executable.hasPrefix(buildDirectory()), "\(executable)")
                let echo = try gateway.remoteExec("echo")
                try await echo.send("over ssh")
                #expect(try await echo.receive(timeout: .seconds(10)) == "over ssh")
            }
            #expect(group[0].remoteInfo?.executable == group[1].remoteInfo?.executable)
            let pids = try group.gateways.map(remotePID) + group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(5))
            #expect(await waitUntilGone(pids))
        }

        @Test func severalGatewaysToOneHostStartAtOnceAndShareTheConnection() async throws {
            let server = try await SSHServer.current()
            let spec = server.spec()
            let group = try await Group(Array(repeating: spec, count: 4))
            #expect(group.count == 4)
            let results = try await withThrowingTaskGroup(of: Value.self) { tasks in
                for gateway in group {
                    tasks.addTask {
                        let channel = try gateway.remoteExec("plus-one")
                        try await channel.send(1)
                        return try await channel.receive(timeout: .seconds(10))
                    }
                }
                return try await tasks.reduce(into: []) { $0.append($1) }
            }
            #expect(results == Array(repeating: 2, count: 4))
            let workers = try group.gateways.map(remotePID)
            let clients = group.gateways.compactMap(\.pid)
            await group.terminate(timeout: .seconds(5))
            #expect(await waitUntilGone(workers + clients))
        }

        @Test func outputIsForwardedAndARemoteDeathBySignalIsReported() async throws {
            let server = try await SSHServer.current()
            let lines = Mutex<[(WorkerOutputStream, [UInt8])]>([])
            ExecnetSettings.setWorkerOutputHandler { id, stream, line in
                if id == "loud" { lines.withLock { $0.append((stream, line)) } }
            }
            defer { ExecnetSettings.setWorkerOutputHandler(nil) }
            let group = try Group()
            let gateway = try await group.makeGateway(server.spec("//id=loud"))
            // The worker writes the same bytes to its stdout and stderr, through ssh.
            let channel = try gateway.remoteExec("write-raw")
            #expect(try await channel.receive(timeout: .seconds(10)) == "ok")
            let expected = Array("not protocol".utf8)
            #expect(try await eventually { lines.withLock { $0.filter { $0.1 == expected }.count } >= 2 })
            #expect(Set(lines.withLock { $0.filter { $0.1 == expected }.map(\.0) }) == [.stdout, .stderr])
            let waiting = try gateway.remoteExec("wait-release")
            kill(try remotePID(gateway), SIGKILL)
            await expectExecnetError(.endOfChannel) { try await waiting.receive(timeout: .seconds(10)) }
            #expect(await gateway.join(timeout: .seconds(10)) == .signaled(SIGKILL))
            await group.terminate(timeout: .seconds(2))
        }

        @Test func aKilledSSHClientEndsTheRemoteWorker() async throws {
            let server = try await SSHServer.current()
            let group = try Group()
            let gateway = try await group.makeGateway(server.spec())
            let workerPID = try remotePID(gateway)
            let waiting = try gateway.remoteExec("wait-release")
            kill(try #require(gateway.pid), SIGKILL)
            do {
                _ = try await waiting.receive(timeout: .seconds(10))
                Issue.record("the channel did not end")
            } catch let error as ExecnetError {
                #expect(error.code == .endOfChannel)
                #expect("\(error)".contains("ssh client"), "\(error)")
            }
            #expect(gateway.exitStatus == .signaled(SIGKILL))
            #expect(await waitUntilGone([workerPID], timeout: .seconds(10)), "the remote worker outlived its ssh client")
            await group.terminate(timeout: .seconds(2))
        }

        @Test(arguments: [false, true]) func aLostConnectionEndsTheGatewayAndTheRemoteWorker(shared: Bool) async throws {
            // A server of its own: its connections are killed.
            let server = try await SSHServer.start()
            defer { server.stop() }
            let group = try Group()
            let gateway = try await group.makeGateway(server.spec(shared ? "" : "//ssh_reuse=no"))
            let workerPID = try remotePID(gateway)
            let waiting = try gateway.remoteExec("wait-release")
            server.killConnections()
            do {
                _ = try await waiting.receive(timeout: .seconds(20))
                Issue.record("the channel did not end")
            } catch let error as ExecnetError {
                #expect(error.code == .endOfChannel)
                #expect("\(error)".contains("ssh connection"), "\(error)")
            }
            #expect(gateway.exitStatus == .exited(255))
            #expect(await waitUntilGone([workerPID], timeout: .seconds(10)), "the remote worker outlived its connection")
            await group.terminate(timeout: .seconds(2))
        }

        @Test func aStoppedSSHClientIsKilledAsUnresponsiveAndTheRemoteWorkerEnds() async throws {
            let server = try await SSHServer.current()
            let group = try Group()
            let gateway = try await group.makeGateway(server.spec())
            let workerPID = try remotePID(gateway)
            let sshPID = try #require(gateway.pid)
            let waiting = try gateway.remoteExec("wait-release")
            // The hub watches the ssh client as it watches a popen worker (default window 1 s × 3).
            kill(sshPID, SIGSTOP)
            do {
                try await waiting.waitClose(timeout: .seconds(20))
                Issue.record("expected the channel to end with an error")
            } catch {
                #expect("\(error)".contains("unresponsive"), "the cause: \(error)")
            }
            #expect(gateway.exitStatus == .signaled(SIGKILL))
            #expect(await waitUntilGone([sshPID, workerPID], timeout: .seconds(10)))
            await group.terminate(timeout: .seconds(2))
        }

        @Test func aKilledClientLeavesNothingOnTheRemoteHost() async throws {
            let server = try await SSHServer.current()
            let (client, line) = try await startChild("\(buildDirectory())/ExecnetTestClient", ["exec-child", server.spec()])
            let words = line.split(separator: " ")
            guard words.first == "READY", words.count == 4 else {
                stopChild(client)
                Issue.record("the client did not start: \(line)")
                return
            }
            // The ssh client, the remote worker, and a command the worker started.
            let pids = words.dropFirst().compactMap { Int32($0) }
            #expect(pids.count == 3 && pids.allSatisfy(processExists))
            _ = cexecnetSignal(client.pidfd, SIGKILL)
            try await reap(client.pid)
            close(client.pidfd)
            #expect(await waitUntilGone(pids, timeout: .seconds(10)), "survivors: \(pids.filter(processExists))")
        }
    }
}

extension ProcessTests {
    /// Every ssh failure provoked for real, each a typed error carrying ssh's own text.
    @Suite struct SSHErrorTests {
        @Test func aKeyTheServerDoesNotKnowIsPermissionDenied() async throws {
            let server = try await SSHServer.current()
            let key = "\(server.directory)/strangerkey"
            if access(key, F_OK) != 0 { try await offPool { try runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]) } }
            let config = try server.variantConfig("stranger", identity: key)
            await expectSSHError(.permissionDenied, containing: "Permission denied (publickey)") {
                try await Group().makeGateway("ssh=127.0.0.1//ssh_config=\(config)//ssh_reuse=no")
            }
        }

        @Test func aChangedHostKeyFailsVerification() async throws {
            let server = try await SSHServer.current()
            let other = "\(server.directory)/otherhostkey"
            if access(other, F_OK) != 0 { try await offPool { try runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]) } }
            let knownHosts = "\(server.directory)/wrong_known_hosts"
            try sshWriteFile(knownHosts, "[127.0.0.1]:\(server.port) \(try sshReadFile(other + ".pub"))")
            let config = try server.variantConfig("wronghost", knownHosts: knownHosts)
            await expectSSHError(.hostKeyVerificationFailed, containing: "Host key verification failed") {
                try await Group().makeGateway("ssh=127.0.0.1//ssh_config=\(config)//ssh_reuse=no")
            }
        }

        @Test func aClosedPortIsConnectionRefused() async throws {
            let server = try await SSHServer.current()
            let config = try server.variantConfig("closed", port: try freePort())
            await expectSSHError(.connectionRefused, containing: "Connection refused") {
                try await Group().makeGateway("ssh=127.0.0.1//ssh_config=\(config)")
            }
        }

        @Test func anUnknownHostIsHostNotFound() async throws {
            let server = try await SSHServer.current()
            await expectSSHError(.hostNotFound, containing: "Could not resolve hostname") {
                try await Group().makeGateway("ssh=no-such-host.invalid//ssh_config=\(server.clientConfig)")
            }
        }

        @Test(arguments: ["DisableForwarding yes", "AllowStreamLocalForwarding no"])
        func aServerThatForbidsForwardingIsNamed(option: String) async throws {
            let server = try await SSHServer.start(options: [option])
            defer { server.stop() }
            await expectSSHError(.forwardingForbidden, containing: "forwarding failed") {
                try await Group().makeGateway(server.spec())
            }
        }

        @Test func aKilledSSHDEndsItsGatewaysAndRefusesNewOnes() async throws {
            let server = try await SSHServer.start()
            let group = try Group()
            let gateway = try await group.makeGateway(server.spec("//ssh_reuse=no"))
            let workerPID = try remotePID(gateway)
            server.stop()
            #expect(await gateway.join(timeout: .seconds(20)) == .exited(255))
            #expect(await waitUntilGone([workerPID], timeout: .seconds(10)))
            await expectSSHError(.connectionRefused, containing: "Connection refused") {
                try await group.makeGateway(server.spec("//ssh_reuse=no"))
            }
            await group.terminate(timeout: .seconds(2))
        }
    }
}

/// OpenSSH's own messages (9.2p1), as the gateway classifies them.
@Suite struct SSHErrorClassificationTests {
    @Test(arguments: [
        ("ssh: Could not resolve hostname nohost.invalid: Name or service not known", SSHError.Code.hostNotFound),
        ("No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.",
         .hostKeyVerificationFailed),
        ("root@127.0.0.1: Permission denied (publickey).", .permissionDenied),
        ("ssh: connect to host 127.0.0.1 port 9: Connection refused", .connectionRefused),
        ("Error: remote port forwarding failed for listen path /tmp/execnet-0/a.sock", .forwardingForbidden),
        ("Connection to 127.0.0.1 closed by remote host.", .connectionLost),
        ("Timeout, server 10.0.0.1 not responding.", .connectionLost),
        ("mkdir: cannot create directory '/x': No space left on device", .noSpace),
        ("something else entirely", .failed),
    ])
    func opensshMessagesGetTheirCode(text: String, code: SSHError.Code) {
        #expect(SSHError.classify(text) == code)
    }

    @Test func bundleErrorsBecomeSSHErrorsWithTheRemoteText() {
        let target = SSHTarget(arguments: ["h"])
        let cases: [(WorkerBundleError, SSHError.Code)] = [
            (.wrongArchitecture(remote: "aarch64", local: "x86_64"), .wrongArchitecture),
            (.glibcTooOld(remote: "2.17", required: "2.34"), .wrongArchitecture),
            (.noSpace(remoteText: "cp: error writing: No space left on device"), .noSpace),
            (.installFailed(status: 2, remoteText: "boom"), .remoteSetupFailed),
        ]
        for (error, code) in cases {
            let mapped = Gateway.sshError(error, target, gatewayID: "g") as? SSHError
            #expect(mapped?.code == code && mapped?.message == "\(error)")
        }
        #expect((Gateway.sshError(.libraryNotFound(name: "libx.so"), target, gatewayID: "g") as? ExecnetError)?.code == .workerNotFound)
    }
}
