// The worker that `execnet-bench runtime` starts (`popen//worker=<dir>/ExecnetBenchWorker`): the
// stock tasks plus the benchmark's. A worker of its own rather than `worker=self`, so the idle-worker
// and start-up figures measure a lean worker like `execnet-worker` (no ArgumentParser, whose
// FoundationEssentials adds about 3 MiB and a few milliseconds to every process). Not a product.

import ExecnetCore
import ExecnetValue
import ExecnetWorkerRuntime

var tasks = TaskRegistry.builtins

// Tasks that only move messages run on the worker's I/O thread (TaskRegistry.registerOnIOThread).

// Start-up: one reply.
tasks.registerOnIOThread("hello") { context in
    try await context.channel.send(1)
}
// Terminate and death: say "ready", then stay blocked in receive until the channel ends.
tasks.register("ready-block") { context in
    try await context.channel.send("ready")
    for try await _ in context.channel {}
}
// One-way: wait for "go", then send `count` items: small ints (size 0) or byte strings of `size`.
tasks.registerOnIOThread("oneway") { context in
    guard case .int(let count)? = context.arguments.first, case .int(let size)? = context.arguments.dropFirst().first
    else { return }
    _ = try await context.channel.receive()
    if size == 0 {
        for index in 0..<count { try await context.channel.send(.int(index)) }
    } else if size < 64 * 1024 {
        let item = Value.bytes([UInt8](repeating: 0x61, count: Int(size)))
        for _ in 0..<count { try await context.channel.send(item) }
    } else {
        // Large items: encoding each one (a copy of the whole item) runs on the cooperative pool,
        // where it overlaps with the I/O thread's sending, instead of on the I/O thread itself.
        try await withTaskExecutorPreference(globalConcurrentExecutor) {
            let item = Value.bytes([UInt8](repeating: 0x61, count: Int(size)))
            for _ in 0..<count { try await context.channel.send(item) }
        }
    }
}
// The hosts curve: "ready", then for each int, wait that many milliseconds and send it back.
tasks.register("sleeper") { context in
    try await context.channel.send("ready")
    for try await item in context.channel {
        guard case .int(let milliseconds) = item else { break }
        try await Task.sleep(for: .milliseconds(milliseconds))
        try await context.channel.send(item)
    }
}
// The seed's taskserver processor without the sleep: "ready", then x*10 per item until none.
tasks.registerOnIOThread("task-processor") { context in
    try await context.channel.send("ready")
    for try await item in context.channel {
        guard case .int(let number) = item else { break }
        try await context.channel.send(.int(number * 10))
    }
}
// The typed task of the taskserver-map and call-rtt figures (execnet-bench declares the same
// type), on the I/O thread as the echo and task-processor tasks it is compared with.
enum TimesTen: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "times-ten"
}
tasks.registerOnIOThread(TimesTen.self) { number, _ in number * 10 }

WorkerMain.run(tasks: tasks)
