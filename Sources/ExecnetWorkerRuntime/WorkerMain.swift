// Entry points for worker executables: the stock execnet-worker, a user's own worker, and a program
// that serves as its own worker when a gateway re-executes it (`worker=self`).

import CExecnetShims
import ExecnetCore
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs a worker process: connects to the client that started it and runs its tasks.
public enum WorkerMain {
    /// Whether this process was started by a gateway as a worker.
    public static var isWorkerProcess: Bool {
        getenv("EXECNET_WORKER_MODE").map { String(cString: $0) == "1" } ?? false
    }

    /// Runs the worker until the client asks it to exit (or goes away), then exits the process.
    ///
    /// Applies the gateway's `chdir` (creating it) and `nice`, arms the parent-death signal, says
    /// hello, and serves tasks.
    ///
    /// - Parameter tasks: The tasks this worker offers.
    /// - Important: Blocks the calling thread forever; call it from `main`.
    @available(*, noasync, message: "blocks forever; call from a synchronous main")
    public static func run(tasks: TaskRegistry) -> Never {
        serve(tasks: tasks)
    }

    private static func serve(tasks: TaskRegistry) -> Never {
        let settings: WorkerSettings
        do {
            settings = try WorkerSettings.fromEnvironment()
        } catch {
            switch error {
            case .notStartedByAGateway:
                fail("EXECNET_ENDPOINT and EXECNET_ROUTING_ID are not set; workers are started by gateways", status: 2)
            case .invalid(let message):
                fail(message, status: 2)
            }
        }
        guard armParentDeath() else {
            let spawner = getenv("EXECNET_PARENT_PID").map { String(cString: $0) } ?? "none"
            fail("cannot arm the parent-death signal (EXECNET_PARENT_PID \(spawner), parent \(getppid())): "
                 + "the process that started this worker is gone or is not its parent", status: 3)
        }
        let logger = makeExecnetLogger(label: "execnet.worker")
        keepFreedBuffers()
        if let directory = getenv("EXECNET_CHDIR").map({ String(cString: $0) }) {
            makeDirectories(directory)
            if chdir(directory) != 0 {
                logger.error("chdir \(directory) failed: errno \(errno)")
                exit(4)
            }
        }
        if let nice = getenv("EXECNET_NICE").flatMap({ Int32(String(cString: $0)) }) {
            errno = 0
            _ = Glibc.nice(nice)
        }
        let slot = WorkerRuntimeSlot()
        do {
            let runtime = try WorkerRuntime(tasks: tasks, settings: settings, logger: logger, runtimeSlot: slot)
            slot.runtime.withLock { $0 = runtime }
            runtime.sayHello()
        } catch {
            logger.error("worker start-up failed: \(error)")
            exit(5)
        }
        while true { pause() }
    }

    /// If this process was started as a worker, runs it (never returning); otherwise returns at once.
    ///
    /// Call it first in `main` of a program that makes gateways with `worker=self`, so the program
    /// serves its own tasks without a second binary.
    ///
    /// In worker mode this blocks the calling thread for good (the process ends by exiting); it may
    /// be called first thing in an async `main`, since the worker never uses the main actor.
    ///
    /// - Parameter tasks: The tasks this program offers as a worker.
    public static func runIfWorkerProcess(tasks: TaskRegistry) {
        if isWorkerProcess { serve(tasks: tasks) }
    }
}

/// Makes the death of the process that started us end us, and everything in our process group.
///
/// The gateway (or agent) that spawned the worker gave it a process group of its own
/// (`EXECNET_PARENT_PID` names that spawner); commands the worker starts stay in it. When the
/// spawning thread ends, the kernel's parent-death signal runs a handler that kills the whole group,
/// so nothing the worker started outlives it even when nobody is left to kill them. A wrapper
/// script may stand between the spawner and the worker (`#!/bin/sh` running the worker as a
/// child): its own parent-death signal (armed at spawn) ends it, and its death ends us.
///
/// - Returns: `false` if the parent is already gone (or is not the spawner nor a wrapper in our
///   group), so the worker must exit at once.
/// Writes `message` as one stderr line (the gateway forwards it as the death's last line) and exits.
private func fail(_ message: String, status: Int32) -> Never {
    let line = "execnet worker: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

private func armParentDeath() -> Bool {
    let spawner = getenv("EXECNET_PARENT_PID").flatMap { pid_t(String(cString: $0)) }
    // Our group is one made for us only if the spawner is in another one; else a kill would hit it.
    var ownGroup = false
    // Over ssh the process group is the session's (sshd made it for the remote command).
    if getenv("EXECNET_SSH_SESSION").map({ String(cString: $0) }) == "1" { ownGroup = true }
    if let spawner {
        let spawnerGroup = getpgid(spawner)
        guard spawnerGroup >= 0 else { return false }
        ownGroup = spawnerGroup != getpgrp()
    }
    guard cexecnet_arm_parent_death(ownGroup ? 1 : 0) == 0 else { return false }
    // Armed: if the parent died before this, it has already been replaced by a reaper.
    guard let spawner else { return true }
    let parent = getppid()
    return parent == spawner || (ownGroup && getpgid(parent) == getpgrp())
}

/// Tunes malloc for the worker process, which is the runtime's own: keep freed large buffers for
/// reuse instead of handing them back to the kernel after every message.
///
/// With glibc's defaults, a buffer of 1 MiB that a task thread frees is trimmed from its arena at
/// once, and the next one faults its 256 pages in again: a stream of 1 MiB items then spends more
/// time in page faults than in copies (and twice the CPU). Allocations up to 32 MiB come from the
/// heap, and up to 64 MiB (four flow-control windows) of freed heap stays mapped instead; that much
/// may stay resident after a burst of large items. Environment tunables the user set win.
private func keepFreedBuffers() {
    for name in ["GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_"] where getenv(name) != nil {
        return
    }
    _ = cexecnet_malloc_keep_freed(32 << 20, 64 << 20, 16 << 20)
}

/// `mkdir -p`.
func makeDirectories(_ path: String) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        mkdir(current, 0o755)
    }
}
