// RSync with real worker processes and real files: trees with links, modes and times, what is
// resent and what is not, deletes, ignore patterns, a 200 MiB file in bounded memory, several
// targets at once, a broker gateway, and hostile peers on either side.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// 2001-09-09 01:46:40.123456789 UTC, in nanoseconds: an mtime no test run could produce by accident.
private let oldTime: Int64 = 1_000_000_000 * 1_000_000_000 + 123_456_789

/// A source tree: nested directories, files with modes and old times, links of three kinds, and
/// files the ignore patterns skip.
private func makeSourceTree(_ root: String) {
    mkdir(root + "/a", 0o755)
    mkdir(root + "/a/b", 0o750)
    mkdir(root + "/a/b/c", 0o755)
    mkdir(root + "/__pycache__", 0o755)
    mkdir(root + "/build", 0o755)
    writeFile(root + "/top.txt", "top", mode: 0o640, mtime: oldTime)
    writeFile(root + "/run.sh", "#!/bin/sh\necho hi\n", mode: 0o755, mtime: oldTime + 1)
    writeFile(root + "/a/b/c/deep.txt", "deep", mode: 0o600, mtime: oldTime + 2)
    writeFile(root + "/a/b/mid.txt", "mid", mtime: oldTime + 3)
    writeFile(root + "/a/skip.pyc", "compiled")
    writeFile(root + "/__pycache__/x.txt", "cache")
    writeFile(root + "/build/out.o", "object")
    writeFile(root + "/build/keep.txt", "kept")
    symlink("b/c/deep.txt", root + "/a/relative-link")
    symlink(root + "/a/b/mid.txt", root + "/absolute-inside")
    symlink("/etc/hostname", root + "/absolute-outside")
    setModificationTime(root + "/a/relative-link", oldTime + 4)
    setModificationTime(root + "/a/b/c", oldTime + 5)
    setModificationTime(root + "/a/b", oldTime + 6)
}

private let ignoring = RSyncFilter(ignoring: ["*.pyc", "__pycache__", "build/*.o"])

extension ProcessTests {
    @Suite struct RSyncTests {
        @Test func aTreeArrivesWithDirectoriesLinksModesTimesAndIgnores() async throws {
            let source = makeTemporaryDirectory("src"), destinationParent = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(source); removeRSyncTree(destinationParent) }
            makeSourceTree(source)
            let destination = destinationParent + "/tree"
            try await withTestGroup(1) { group in
                let rsync = RSync(sourceDirectory: source, filter: ignoring)
                let finished = ProgressRecorder()
                rsync.addTarget(group.gateways[0], destination: destination, finished: {
                    finished.callback(RSyncProgress(target: RSync.Target(gatewayID: "x", destination: "y"), event: .finished,
                                                    path: nil, filesPlanned: 0, bytesPlanned: 0, filesSent: 0, bytesSent: 0,
                                                    filesUnchanged: 0))
                })
                let progress = ProgressRecorder()
                try await rsync.send(progress: progress.callback)
                #expect(finished.all.count == 1, "the finished callback ran once")
                #expect(progress.all.last?.event == .finished)
                #expect(progress.all.last?.filesSent == 5)
            }
            #expect(readText(destination + "/top.txt") == "top")
            #expect(readText(destination + "/a/b/c/deep.txt") == "deep")
            #expect(readText(destination + "/build/keep.txt") == "kept")
            #expect(fileStatus(destination + "/a/skip.pyc") == nil, "*.pyc is ignored")
            #expect(fileStatus(destination + "/__pycache__") == nil, "a name pattern ignores a directory")
            #expect(fileStatus(destination + "/build/out.o") == nil, "a path pattern ignores by trailing components")
            #expect(fileStatus(destination + "/top.txt")!.st_mode & 0o7777 == 0o640)
            #expect(fileStatus(destination + "/run.sh")!.st_mode & 0o7777 == 0o755)
            #expect(fileStatus(destination + "/a/b/c/deep.txt")!.st_mode & 0o7777 == 0o600)
            #expect(fileStatus(destination + "/a/b")!.st_mode & 0o7777 == 0o750, "directory modes are kept")
            #expect(modificationTime(destination + "/top.txt") == oldTime, "mtimes keep their nanoseconds")
            #expect(modificationTime(destination + "/a/b/c/deep.txt") == oldTime + 2)
            #expect(modificationTime(destination + "/a/b/c") == oldTime + 5, "directory times are set last")
            #expect(modificationTime(destination + "/a/b") == oldTime + 6)
            #expect(modificationTime(destination + "/a/relative-link") == oldTime + 4, "link times too")
            #expect(linkTarget(destination + "/a/relative-link") == "b/c/deep.txt", "links stay links")
            #expect(readText(destination + "/a/relative-link") == nil, "opened without following: a link")
            #expect(linkTarget(destination + "/absolute-inside") == "a/b/mid.txt",
                    "an absolute link into the source points into the destination")
            #expect(linkTarget(destination + "/absolute-outside") == "/etc/hostname", "other links are copied verbatim")
        }

        @Test func aSecondSendSendsOnlyWhatDiffersAndDeletes() async throws {
            let source = makeTemporaryDirectory("src"), destination = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(source); removeRSyncTree(destination) }
            mkdir(source + "/d", 0o755)
            let unchanged = [UInt8](repeating: 7, count: 300_000)
            writeFile(source + "/unchanged.bin", unchanged, mtime: oldTime)
            writeFile(source + "/same-size.txt", "version 1", mtime: oldTime)
            writeFile(source + "/grows.txt", "short")
            writeFile(source + "/d/removed.txt", "soon gone")
            writeFile(source + "/removed-dir-file.txt", "x")
            try await withTestGroup(1) { group in
                let first = RSync(sourceDirectory: source)
                first.addTarget(group.gateways[0], destination: destination)
                let progress = ProgressRecorder()
                try await first.send(progress: progress.callback)
                #expect(progress.bytesSent == 300_000 + 9 + 5 + 9 + 1)

                // Same size and the same mtime, other content: only the hash can tell.
                writeFile(source + "/same-size.txt", "version 2", mtime: oldTime)
                writeFile(source + "/grows.txt", "much longer now")
                unlink(source + "/d/removed.txt")
                unlink(source + "/removed-dir-file.txt")
                writeFile(source + "/new.txt", "new")
                // Something only the destination has, in a directory the source lists.
                writeFile(destination + "/d/extra.txt", "extra")
                chmod(source + "/unchanged.bin", 0o600)

                let second = RSync(sourceDirectory: source)
                second.addTarget(group.gateways[0], destination: destination, delete: true)
                let again = ProgressRecorder()
                try await second.send(progress: again.callback)
                let last = try #require(again.all.last)
                #expect(last.bytesSent == 9 + 15 + 3, "only the changed and new files' bytes went: \(last)")
                #expect(last.filesSent == 3)
                #expect(last.filesUnchanged == 1, "the unchanged file was compared by hash, not resent")
                #expect(!again.all.contains { $0.path == "unchanged.bin" && $0.event != .fileUnchanged })
            }
            #expect(readText(destination + "/same-size.txt") == "version 2")
            #expect(readText(destination + "/grows.txt") == "much longer now")
            #expect(readText(destination + "/new.txt") == "new")
            #expect(readFile(destination + "/unchanged.bin")?.count == 300_000)
            #expect(fileStatus(destination + "/unchanged.bin")!.st_mode & 0o7777 == 0o600, "a kept file gets the new mode")
            #expect(fileStatus(destination + "/d/removed.txt") == nil, "delete removes what the source lost")
            #expect(fileStatus(destination + "/d/extra.txt") == nil, "and what it never had")
            #expect(fileStatus(destination + "/removed-dir-file.txt") == nil)
            #expect(directoryNames(destination) == ["d", "grows.txt", "new.txt", "same-size.txt", "unchanged.bin"],
                    "no temporary file is left")
        }

        @Test func threePopenTargetsAtOnceAndAFailingOneDoesNotStopThem() async throws {
            let source = makeTemporaryDirectory("src"), parent = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(source); removeRSyncTree(parent) }
            makeSourceTree(source)
            writeFile(source + "/big.bin", (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            writeFile(parent + "/a-file", "not a directory")
            try await withTestGroup(4) { group in
                let rsync = RSync(sourceDirectory: source, filter: ignoring)
                for (index, gateway) in group.gateways.prefix(3).enumerated() {
                    rsync.addTarget(gateway, destination: parent + "/copy\(index)")
                }
                rsync.addTarget(group.gateways[3], destination: parent + "/a-file")
                let progress = ProgressRecorder()
                let failure = await expectRSyncFailures([.destinationNotDirectory]) {
                    try await rsync.send(progress: progress.callback)
                }
                #expect(failure?.failures.first?.target?.gatewayID == group.gateways[3].id)
                #expect(failure?.failures.first?.isRemote == true)
                #expect(failure?.completed.count == 3)
                #expect(progress.bytesSent == 3 * (3_000_000 + 3 + 18 + 4 + 3 + 4))
            }
            for index in 0..<3 {
                #expect(readFile(parent + "/copy\(index)/big.bin")?.count == 3_000_000)
                #expect(readText(parent + "/copy\(index)/a/b/c/deep.txt") == "deep")
                #expect(linkTarget(parent + "/copy\(index)/a/relative-link") == "b/c/deep.txt")
            }
            #expect(readText(parent + "/a-file") == "not a directory", "the file named as destination is untouched")
        }

        @Test func aBrokerGatewayIsATargetLikeAnyOther() async throws {
            let source = makeTemporaryDirectory("src"), destination = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(source); removeRSyncTree(destination) }
            makeSourceTree(source)
            try await withTestGroup(1, kind: .broker) { group in
                let rsync = RSync(sourceDirectory: source, filter: ignoring)
                rsync.addTarget(group.gateways[0], destination: destination + "/via-broker")
                try await rsync.send()
            }
            #expect(readText(destination + "/via-broker/a/b/mid.txt") == "mid")
            #expect(modificationTime(destination + "/via-broker/top.txt") == oldTime)
            #expect(linkTarget(destination + "/via-broker/absolute-inside") == "a/b/mid.txt")
        }

        @Test func a200MiBFileStreamsInBoundedMemoryOnBothSides() async throws {
            let source = makeTemporaryDirectory("src"), destination = makeTemporaryDirectory("dst")
            defer { removeRSyncTree(source); removeRSyncTree(destination) }
            let size = 200 * 1024 * 1024
            // Write the file in 1 MiB pieces (the test itself must not hold 200 MiB either).
            let fd = open(source + "/large.bin", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            var piece = [UInt8](repeating: 0, count: 1024 * 1024)
            for index in 0..<200 {
                for offset in stride(from: 0, to: piece.count, by: 4096) { piece[offset] = UInt8(truncatingIfNeeded: index &+ offset) }
                #expect(write(fd, piece, piece.count) == piece.count)
            }
            close(fd)
            try await withTestGroup(1) { group in
                let worker = try #require(group.gateways[0].pid)
                let client = getpid()
                #expect(resetPeakMemory(worker) && resetPeakMemory(client))
                let workerBefore = try #require(memoryKiB(worker, "VmRSS"))
                let clientBefore = try #require(memoryKiB(client, "VmRSS"))
                let rsync = RSync(sourceDirectory: source)
                rsync.addTarget(group.gateways[0], destination: destination)
                let progress = ProgressRecorder()
                try await rsync.send(progress: progress.callback)
                let workerGrowth = try #require(memoryKiB(worker, "VmHWM")) - workerBefore
                let clientGrowth = try #require(memoryKiB(client, "VmHWM")) - clientBefore
                #expect(progress.bytesSent == Int64(size))
                #expect(progress.all.filter { $0.event == .chunkSent }.count == size / RSyncWire.chunkSize)
                #expect(workerGrowth < 64 * 1024, "the worker's peak RSS grew by \(workerGrowth) KiB")
                #expect(clientGrowth < 64 * 1024, "the client's peak RSS grew by \(clientGrowth) KiB")
            }
            #expect(fileStatus(destination + "/large.bin")?.st_size == Int(size))
            let copy = open(destination + "/large.bin", O_RDONLY)
            var check = [UInt8](repeating: 0, count: 1024 * 1024)
            var matches = true
            for index in 0..<200 {
                _ = lseek(copy, off_t(index * 1024 * 1024), SEEK_SET)
                _ = read(copy, &check, check.count)
                matches = matches && check[4096] == UInt8(truncatingIfNeeded: index &+ 4096) && check[1] == 0
            }
            close(copy)
            #expect(matches, "the copy has the source's bytes")
        }
    }
}
