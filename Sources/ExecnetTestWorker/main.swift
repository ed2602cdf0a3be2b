// execnet-test-worker: the stock tasks plus the tasks the integration tests drive. Built with the
// package so tests run real worker processes; not part of the library's API.

import Execnet
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct TaskFailure: Error, CustomStringConvertible {
    let description: String
}

var tasks = TaskRegistry.builtins

// Sends each positional argument, then returns.
tasks.register("send") { context in
    for item in context.arguments { try await context.channel.send(item) }
}
// The seed's example 3: receive one item, then send 42.
tasks.register("receive-send42") { context in
    _ = try await context.channel.receive()
    try await context.channel.send(42)
}
// The seed's example 4: send back what you receive plus one.
tasks.register("plus-one") { context in
    guard case .int(let number) = try await context.channel.receive() else { throw TaskFailure(description: "not an int") }
    try await context.channel.send(.int(number + 1))
}
// Sends 42, then throws.
tasks.register("send-then-throw") { context in
    try await context.channel.send(42)
    throw TaskFailure(description: "boom after 42")
}
// Tries to close its own channel and reports what happened.
tasks.register("close-own") { context in
    do {
        try context.channel.close()
        try await context.channel.send("closed")
    } catch {
        try await context.channel.send("refused")
    }
}
// Receives on its channel until the end; reports how it ended on the side channel given as argument.
tasks.register("report-end") { context in
    guard case .channel(let side)? = context.arguments.first else { throw TaskFailure(description: "needs a channel") }
    do {
        while true { _ = try await context.channel.receive() }
    } catch let error as RemoteError {
        try await side.send(.tuple(["remote", .string(error.text)]))
    } catch {
        try await side.send(.tuple(["other", .string("\(error)")]))
    }
}
// Sends 1, then receives until the end; reports how it ended on the side channel (first argument).
tasks.register("send-then-report") { context in
    guard case .channel(let side)? = context.arguments.first else { throw TaskFailure(description: "needs a channel") }
    try await context.channel.send(1)
    do {
        while true { _ = try await context.channel.receive() }
    } catch let error as RemoteError {
        try await side.send(.tuple(["remote", .string(error.text)]))
    } catch {
        try await side.send(.tuple(["other", .string("\(error)")]))
    }
}
// Receives a channel and sends it back.
tasks.register("return-channel") { context in
    let item = try await context.channel.receive()
    try await context.channel.send(item)
}
// Sends the integers 0..<n (n is the first argument).
tasks.register("count") { context in
    guard case .int(let count)? = context.arguments.first else { throw TaskFailure(description: "needs n") }
    for index in 0..<count { try await context.channel.send(.int(index)) }
}
// Receives n items and checks they are 0..<n in order; sends back the count.
tasks.register("consume") { context in
    guard case .int(let count)? = context.arguments.first else { throw TaskFailure(description: "needs n") }
    for expected in 0..<count {
        let item = try await context.channel.receive()
        guard case .int(expected) = item else { throw TaskFailure(description: "item \(expected) was \(item)") }
    }
    try await context.channel.send(.int(count))
}
// Blocks in receive, then sends back what it got (many of these run at once).
tasks.register("wait-release") { context in
    let item = try await context.channel.receive()
    try await context.channel.send(item)
}
// The same on a thread of its own, with the blocking API.
tasks.registerThread("wait-release-thread") { context in
    let item = try context.channel.receiveBlocking()
    try context.channel.sendBlocking(item)
}
// Writes raw bytes to fd 1 and 2, then sends "ok".
tasks.register("write-raw") { context in
    let junk: [UInt8] = [0x00, 0xff, 0x51, 0x0a] + Array("not protocol\n".utf8)
    _ = junk.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    _ = junk.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    try await context.channel.send("ok")
}
// Exits the worker process with the given code.
tasks.register("exit") { context in
    guard case .int(let code)? = context.arguments.first else { throw TaskFailure(description: "needs a code") }
    exit(Int32(code))
}
// Sends its pid, then sleeps until killed.
tasks.register("pid-then-sleep") { context in
    try await context.channel.send(.int(Int64(getpid())))
    while true { try await Task.sleep(for: .seconds(60)) }
}
// The seed's taskserver processor: "ready", then x*10 per item until None.
tasks.register("task-processor") { context in
    try await context.channel.send("ready")
    for try await item in context.channel {
        guard case .int(let number) = item else { break }
        try await context.channel.send(.int(number * 10))
    }
}

// The same as "count" and "consume", on the worker's I/O thread.
tasks.registerOnIOThread("count-io") { context in
    guard case .int(let count)? = context.arguments.first else { throw TaskFailure(description: "needs n") }
    for index in 0..<count { try await context.channel.send(.int(index)) }
}
tasks.registerOnIOThread("consume-io") { context in
    guard case .int(let count)? = context.arguments.first else { throw TaskFailure(description: "needs n") }
    for expected in 0..<count {
        let item = try await context.channel.receive()
        guard case .int(expected) = item else { throw TaskFailure(description: "item \(expected) was \(item)") }
    }
    try await context.channel.send(.int(count))
}
// On the I/O thread, tries the blocking API and sends what it threw.
tasks.registerOnIOThread("blocking-on-io") { context in
    try await context.channel.send(.string(tryBlockingReceive(context.channel)))
}
func tryBlockingReceive(_ channel: Channel) -> String {
    do {
        _ = try channel.receiveBlocking(timeout: .milliseconds(10))
        return "no error"
    } catch {
        return "\(error)"
    }
}

// Typed tasks (the test side declares the same types in TypedTaskTests.swift).
tasks.register(Square.self) { input, _ in input * input }
tasks.register(EchoRecord.self) { input, _ in input }
tasks.register(FailWith.self) { input, _ in throw TaskFailure(description: input) }
tasks.register(Hang.self) { _, _ in
    typedCounters.withLock { $0.started += 1 }
    do {
        while true { try await Task.sleep(for: .seconds(60)) }
    } catch {
        typedCounters.withLock { $0.cancelled += 1 }
        throw error
    }
}
tasks.register(HangStats.self) { input, _ in
    // Waits (bounded, 20 s) until the counters reach the asked minimums, then reports them.
    for _ in 0..<2000 {
        let now = typedCounters.withLock { $0 }
        if now.started >= input.started && now.cancelled >= input.cancelled { return now }
        try await Task.sleep(for: .milliseconds(10))
    }
    return typedCounters.withLock { $0 }
}
tasks.register(Crashy.self) { input, _ in
    if input.value < 0 { raise(SIGKILL) }
    if let marker = input.crashOnceMarker {
        let fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        if fd >= 0 {
            close(fd)
            raise(SIGKILL)
        }
    }
    if input.delayMilliseconds > 0 { try await Task.sleep(for: .milliseconds(input.delayMilliseconds)) }
    return input.value * 2
}
// Throws `Transient` the first time its marker file is created, else returns the value.
tasks.register(Flaky.self) { input, _ in
    if let marker = input.crashOnceMarker {
        let fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        if fd >= 0 {
            close(fd)
            throw Transient()
        }
    }
    return input.value
}

WorkerMain.run(tasks: tasks)
