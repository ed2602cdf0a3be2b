// RSync against hostile or broken peers: a client that names paths outside the destination,
// claims a huge size or vanishes mid-file (driven by hand over the task's channel); a destination
// with links planted in it, or one that is a file or a link; a worker that asks for paths outside
// the source, lies, or dies mid-file. Typed errors, nothing written outside, no crash.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Starts the worker's rsync task by hand on `gateway`.
private func rawTransfer(_ gateway: Gateway, _ destination: String) throws -> Channel {
    try gateway.remoteExec(RSyncWire.taskName, arguments: [],
                           keywordArguments: ["destination": .string(destination), "version": .int(RSyncWire.version)])
}

private func fileEntry(_ path: String, size: Int64) -> Value {
    RSyncEntry(path: path, kind: .file, mode: 0o644, mtimeNanoseconds: 0, size: size, linkTarget: nil).value
}

/// Receives until an `("error", code, …)` arrives and returns its code (or what ended the channel).
private func errorCode(_ channel: Channel) async throws -> String {
    while true {
        let message = try await channel.receive(timeout: .seconds(20))
        if case .tuple(let parts) = message, parts.first == "error", case .string(let code)? = parts.dropFirst().first {
            return code
        }
    }
}

extension ProcessTests {
    @Suite struct RSyncHostileTests {
        @Test(arguments: ["../escaped", "/tmp/execnet-rsync-absolute", "a/../../escaped", "a//b", ".", "a/./b"])
        func theWorkerRefusesPathsThatLeaveTheDestination(_ path: String) async throws {
            let parent = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(parent) }
            let destination = parent + "/inside"
            try await withTestGroup(1) { group in
                let channel = try rawTransfer(group.gateways[0], destination)
                let directory = RSyncEntry(path: "a", kind: .directory, mode: 0o755, mtimeNanoseconds: 0, size: 0, linkTarget: nil)
                try await channel.send(.tuple(["entries", [directory.value, fileEntry(path, size: 1)]]))
                try await channel.send(.tuple(["end", 2]))
                #expect(try await errorCode(channel) == "unsafe-path")
            }
            #expect(directoryNames(parent) == ["inside"], "nothing was written beside the destination")
            #expect(directoryNames(destination) == [], "nothing was written inside either: the list was refused first")
            #expect(fileStatus("/tmp/execnet-rsync-absolute") == nil)
        }

        @Test func theWorkerRefusesAnEntryBeforeItsDirectoryAndDuplicates() async throws {
            let destination = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(destination) }
            try await withTestGroup(1) { group in
                let orphan = try rawTransfer(group.gateways[0], destination)
                try await orphan.send(.tuple(["entries", [fileEntry("nowhere/f", size: 1)]]))
                #expect(try await errorCode(orphan) == "protocol")
                let twice = try rawTransfer(group.gateways[0], destination)
                try await twice.send(.tuple(["entries", [fileEntry("f", size: 1), fileEntry("f", size: 2)]]))
                #expect(try await errorCode(twice) == "protocol")
                let garbage = try rawTransfer(group.gateways[0], destination)
                try await garbage.send(.bytes([1, 2, 3]))
                #expect(try await errorCode(garbage) == "protocol")
            }
            #expect(directoryNames(destination) == [])
        }

        @Test func linksPlantedInTheDestinationAreReplacedNeverFollowed() async throws {
            let source = makeTemporaryDirectory("src"), destination = makeTemporaryDirectory("dst")
            let outside = makeTemporaryDirectory("outside")
            defer { removeRSyncTree(source); removeRSyncTree(destination); removeRSyncTree(outside) }
            mkdir(source + "/sub", 0o755)
            writeFile(source + "/sub/x.txt", "x")
            writeFile(source + "/f.txt", "new content")
            writeFile(outside + "/f.txt", "outside")
            symlink(outside, destination + "/sub")
            symlink(outside + "/f.txt", destination + "/f.txt")
            try await withTestGroup(1) { group in
                let rsync = RSync(sourceDirectory: source)
                rsync.addTarget(group.gateways[0], destination: destination, delete: true)
                try await rsync.send()
            }
            #expect(directoryNames(outside) == ["f.txt"], "nothing was written through the planted directory link")
            #expect(readText(outside + "/f.txt") == "outside", "nor through the planted file link")
            #expect(fileStatus(destination + "/sub")!.st_mode & 0o170000 == 0o040000, "the link was replaced by a directory")
            #expect(readText(destination + "/sub/x.txt") == "x")
            #expect(readText(destination + "/f.txt") == "new content")
        }

        @Test func aDestinationThatIsALinkOrAnotherUsersIsRefused() async throws {
            let source = makeTemporaryDirectory("src"), parent = makeTemporaryDirectory("dst")
            let elsewhere = makeTemporaryDirectory("elsewhere")
            defer { removeRSyncTree(source); removeRSyncTree(parent); removeRSyncTree(elsewhere) }
            writeFile(source + "/f.txt", "f")
            symlink(elsewhere, parent + "/link")
            mkdir(parent + "/open", 0o777)
            chmod(parent + "/open", 0o777)
            try await withTestGroup(1) { group in
                let rsync = RSync(sourceDirectory: source)
                rsync.addTarget(group.gateways[0], destination: parent + "/link")
                rsync.addTarget(group.gateways[0], destination: parent + "/open")
                // A directory another user owns (a squatter's): made and given away when the tests
                // run as root, else one that root owns.
                var squatted = "/usr/share"
                if getuid() == 0 {
                    squatted = parent + "/squatted"
                    mkdir(squatted, 0o755)
                    #expect(chown(squatted, 65534, 65534) == 0)
                }
                rsync.addTarget(group.gateways[0], destination: squatted)
                _ = await expectRSyncFailures([.destinationUnsafe, .destinationUnsafe, .destinationUnsafe]) {
                    try await rsync.send()
                }
                if getuid() == 0 { #expect(directoryNames(squatted) == []) }
            }
            #expect(directoryNames(elsewhere) == [], "nothing was written where the link points")
            #expect(directoryNames(parent + "/open") == [])
        }

        @Test func aHugeClaimedSizeIsRefusedBeforeAnythingIsWritten() async throws {
            let destination = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(destination) }
            try await withTestGroup(1) { group in
                let channel = try rawTransfer(group.gateways[0], destination)
                try await channel.send(.tuple(["entries", [fileEntry("f", size: 1)]]))
                try await channel.send(.tuple(["end", 1]))
                #expect(try await channel.receive(timeout: .seconds(20)) == .tuple(["want", [["f", .none]]]))
                #expect(try await channel.receive(timeout: .seconds(20)) == .tuple(["wanted", 1]))
                try await channel.send(.tuple(["file", "f", .int(1 << 62)]))
                #expect(try await errorCode(channel) == "no-space")
                // More bytes than announced are refused too.
                let more = try rawTransfer(group.gateways[0], destination)
                try await more.send(.tuple(["entries", [fileEntry("g", size: 2)]]))
                try await more.send(.tuple(["end", 1]))
                _ = try await more.receive(timeout: .seconds(20))
                _ = try await more.receive(timeout: .seconds(20))
                try await more.send(.tuple(["file", "g", 2]))
                try await more.send(.bytes([1, 2, 3]))
                #expect(try await errorCode(more) == "protocol")
            }
            #expect(directoryNames(destination) == [], "no file and no temporary file")
        }

        @Test func aClientThatVanishesMidFileLeavesNoPartialFile() async throws {
            let destination = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(destination) }
            writeFile(destination + "/f", "the old version")
            try await withTestGroup(1) { group in
                let gateway = group.gateways[0]
                let channel = try rawTransfer(gateway, destination)
                try await channel.send(.tuple(["entries", [fileEntry("f", size: 1_000_000)]]))
                try await channel.send(.tuple(["end", 1]))
                _ = try await channel.receive(timeout: .seconds(20))
                _ = try await channel.receive(timeout: .seconds(20))
                try await channel.send(.tuple(["file", "f", 1_000_000]))
                try await channel.send(.bytes([UInt8](repeating: 1, count: 65536)))
                // The temporary file exists while the transfer waits for the rest.
                #expect(try await eventually { directoryNames(destination).count == 2 })
                try channel.close()
                #expect(try await eventually { (try? await gateway.remoteStatus())?.executingCount == 0 },
                        "the task ended when its channel closed")
            }
            #expect(directoryNames(destination) == ["f"], "the temporary file is gone")
            #expect(readText(destination + "/f") == "the old version", "the old file was not replaced by a partial one")
        }

        @Test(arguments: ["dotdot", "unlisted", "twice", "garbage"])
        func aLyingWorkerGetsAProtocolErrorAndNothingOutsideTheSourceIsRead(_ lie: String) async throws {
            let source = makeTemporaryDirectory("src")
            defer { removeRSyncTree(source) }
            writeFile(source + "/f.txt", "f")
            try await withTestGroup(1) { group in
                let rsync = RSync(sourceDirectory: source)
                rsync.useTask("hostile-rsync")
                rsync.addTarget(group.gateways[0], destination: lie)
                let progress = ProgressRecorder()
                let failure = await expectRSyncFailures([.protocolViolation]) { try await rsync.send(progress: progress.callback) }
                #expect(failure?.failures.first?.isRemote == false, "the client found the lie")
                #expect(progress.bytesSent == 0, "nothing was sent")
            }
        }

        @Test func aWorkerThatDiesMidFileFailsItsTargetWithConnectionLost() async throws {
            let source = makeTemporaryDirectory("src")
            defer { removeRSyncTree(source) }
            writeFile(source + "/f.bin", [UInt8](repeating: 3, count: 40 * 1024 * 1024))
            try await withTestGroup(1) { group in
                let rsync = RSync(sourceDirectory: source)
                rsync.useTask("hostile-rsync")
                rsync.addTarget(group.gateways[0], destination: "exit-mid-file")
                _ = await expectRSyncFailures([.connectionLost]) { try await rsync.send() }
            }
        }

        @Test func cancellingTheSendEndsATransferWaitingForASilentWorker() async throws {
            let source = makeTemporaryDirectory("src")
            defer { removeRSyncTree(source) }
            writeFile(source + "/f.txt", "f")
            try await withTestGroup(1) { (group: Group) async throws -> Void in
                let gateway = group.gateways[0]
                let rsync = RSync(sourceDirectory: source)
                rsync.useTask("hostile-rsync")
                rsync.addTarget(gateway, destination: "silent")
                let sending = Task { () -> RSyncSendError? in
                    do throws(RSyncSendError) {
                        try await rsync.send()
                        return nil
                    } catch {
                        return error
                    }
                }
                // The worker's task runs (and will never answer): the transfer waits for its wants.
                #expect(try await eventually { (try? await gateway.remoteStatus())?.executingCount == 1 })
                sending.cancel()
                let failure = await sending.value
                #expect(failure?.failures.map(\.code) == [.cancelled])
                #expect(try await eventually { (try? await gateway.remoteStatus())?.executingCount == 0 },
                        "the worker's task ended with the closed channel")
            }
        }

        @Test func aWorkerWithoutTheTaskIsARemoteError() async throws {
            let source = makeTemporaryDirectory("src")
            defer { removeRSyncTree(source) }
            try await withTestGroup(1) { group in
                let rsync = RSync(sourceDirectory: source)
                rsync.useTask("no-such-task")
                rsync.addTarget(group.gateways[0], destination: "/tmp/unused")
                _ = await expectRSyncFailures([.remote]) { try await rsync.send() }
                _ = await expectRSyncFailures([.alreadySent]) { try await rsync.send() }
                _ = await expectRSyncFailures([.noTargets]) { try await RSync(sourceDirectory: source).send() }
                let missing = RSync(sourceDirectory: source + "/missing")
                missing.addTarget(group.gateways[0], destination: "/tmp/unused")
                _ = await expectRSyncFailures([.sourceUnreadable]) { try await missing.send() }
            }
        }
    }
}
