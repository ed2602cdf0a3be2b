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

// Opens a channel on the worker side, sends it, sends each argument on it, and closes it.
tasks.register("make-channel") { context in
    let side = context.newChannel()
    try await context.channel.send(.channel(side))
    for item in context.arguments { try await side.send(item) }
    try side.close()
}
// Opens a channel on the worker side and sends it; the client sends it back (with an item on it
// first); answers whether the channel that came back is the very same object, and the item.
tasks.register("channel-comes-back") { context in
    let side = context.newChannel()
    try await context.channel.send(.channel(side))
    guard case .channel(let returned) = try await context.channel.receive() else {
        throw TaskFailure(description: "needs a channel back")
    }
    let item = try await side.receive()
    try await context.channel.send(.tuple([.bool(returned === side), .int(Int64(side.id)), item]))
}
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
// Writes its last words to stderr, then exits the worker process with the given code.
tasks.register("stderr-then-exit") { context in
    guard case .int(let code)? = context.arguments.first else { throw TaskFailure(description: "needs a code") }
    let words = Array("first words\nlast words\n".utf8)
    _ = words.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
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
// Holds the worker's I/O thread for the given milliseconds (no socket is served meanwhile), then
// replies "done": a busy worker, which liveness must not take for a dead one.
tasks.registerOnIOThread("hold-io-thread") { context in
    let milliseconds = context.arguments.first?.intValue ?? 0
    let until = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
    while ContinuousClock.now < until { usleep(10_000) }
    try await context.channel.send("done")
}
func tryBlockingReceive(_ channel: Channel) -> String {
    do {
        _ = try channel.receiveBlocking(timeout: .milliseconds(10))
        return "no error"
    } catch {
        return "\(error)"
    }
}

// Sends its named arguments as one dict (text keys).
tasks.register("send-keywords") { context in
    var fields = ValueDictionary()
    for (key, value) in context.keywordArguments { fields[.string(key)] = value }
    try await context.channel.send(.dict(fields))
}
// Changes the worker's directory to the first argument.
tasks.register("chdir") { context in
    guard case .string(let path)? = context.arguments.first, chdir(path) == 0 else {
        throw TaskFailure(description: "chdir failed")
    }
}
// Prints lines through a write file on its channel: "line 0\n" … for n (first argument) lines,
// flushing after the last, then a write of "end\n".
tasks.register("print-lines") { context in
    guard case .int(let count)? = context.arguments.first else { throw TaskFailure(description: "needs n") }
    var out = context.channel.makeWriteFile(proxyClose: true)
    for index in 0..<count { print("line", index, to: &out) }
    try await out.flush()
    try await out.write("end\n")
    try await out.close()
}
// The same from a thread of its own, with the blocking flush.
tasks.registerThread("print-lines-thread") { context in
    guard case .int(let count)? = context.arguments.first else { throw TaskFailure(description: "needs n") }
    var out = context.channel.makeWriteFile()
    for index in 0..<count { print("line", index, to: &out) }
    try out.flushBlocking()
}
// Prints its second argument through a write file on the channel given as first argument.
tasks.register("print-to") { context in
    guard case .channel(let target)? = context.arguments.first, case .string(let text)? = context.arguments.dropFirst().first
    else { throw TaskFailure(description: "needs a channel and a text") }
    var out = target.makeWriteFile()
    print(text, to: &out)
    try await out.flush()
}
// Reads its channel as a file: read(n) for the second argument's count, then readline, then every
// further line to the end; sends [read, readline, [lines…], read(1) at the end] on the channel
// given as first argument.
tasks.register("read-file") { context in
    guard case .channel(let reply)? = context.arguments.first, case .int(let count)? = context.arguments.dropFirst().first
    else { throw TaskFailure(description: "needs a channel and n") }
    let file = context.channel.makeReadFile()
    let head = try await file.read(Int(count))
    let line = try await file.readline()
    var lines: [Value] = []
    for try await next in file { lines.append(.string(next)) }
    let after = try await file.read(1)
    try await reply.send(.list([.string(head), .string(line), .list(lines), .string(after)]))
}

// "read-file" on a thread of its own, with the blocking file API; answers on the reply channel
// [read(n), readline, [further lines…]] and then writes "done\n" to it through a write file.
tasks.registerThread("read-file-thread") { context in
    guard case .channel(let reply)? = context.arguments.first, case .int(let count)? = context.arguments.dropFirst().first
    else { throw TaskFailure(description: "needs a channel and n") }
    let file = context.channel.makeReadFile()
    let head = try file.readBlocking(Int(count))
    let line = try file.readlineBlocking()
    var lines: [Value] = []
    while case let next = try file.readlineBlocking(maxLength: 100), !next.isEmpty { lines.append(.string(next)) }
    try reply.sendBlocking(.list([.string(head), .string(line), .list(lines)]))
    let out = reply.makeWriteFile(proxyClose: true)
    try out.writeBlocking("done\n")
    try out.closeBlocking()
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
    if input.hang == true {
        while true { try await Task.sleep(for: .seconds(60)) }
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
tasks.register(CallID.self) { _, context in Int(context.requestID) }
tasks.registerOnIOThread(SquareOnIO.self) { input, _ in input * input }
tasks.registerOnIOThread(HangOnIO.self) { _, _ in
    typedCounters.withLock { $0.started += 1 }
    do {
        while true { try await Task.sleep(for: .seconds(60)) }
    } catch {
        typedCounters.withLock { $0.cancelled += 1 }
        throw error
    }
}

// Streaming typed tasks: counts down with the writer (throwing at `failAt`), counts up as an
// AsyncSequence, and ticks until cancelled (counted in `streamCounters`).
tasks.register(Countdown.self) { input, writer, _ in
    for n in stride(from: input.from, to: 0, by: -1) {
        if n == input.failAt { throw TaskFailure(description: "countdown failed at \(n)") }
        try await writer.send(Tick(n: n, label: String(repeating: "*", count: n % 7)))
    }
}
tasks.register(Numbers.self) { (count: Int, _) in
    AsyncStream<Int> { continuation in
        for number in 0..<count { continuation.yield(number) }
        continuation.finish()
    }
}
tasks.register(Ticker.self) { input, writer, _ in
    streamCounters.withLock { $0.started += 1 }
    do {
        var tick = 0
        while true {
            try await writer.send(tick)
            tick += 1
            try await Task.sleep(for: .milliseconds(input))
        }
    } catch {
        // The client went away: a send may fail (closed) just before the runtime cancels this
        // Task; wait (bounded) for the cancellation, and count only a Task that was cancelled.
        for _ in 0..<500 where !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
        if Task.isCancelled { streamCounters.withLock { $0.cancelled += 1 } }
        throw error
    }
}
tasks.register(TickerStats.self) { input, _ in
    // Waits (bounded, 20 s) until the counters reach the asked minimums, then reports them.
    for _ in 0..<2000 {
        let now = streamCounters.withLock { $0 }
        if now.started >= input.started && now.cancelled >= input.cancelled { return now }
        try await Task.sleep(for: .milliseconds(10))
    }
    return streamCounters.withLock { $0 }
}

// A lying rsync worker for the client's hostile-peer tests; its `destination` keyword picks the lie:
// "dotdot" asks for ../outside, "unlisted" for a path never listed, "twice" for one file twice,
// "garbage" answers with a bare integer, "exit-mid-file" dies after the first chunk of a file,
// "silent" never answers.
tasks.register("hostile-rsync") { context in
    guard case .string(let mode)? = context["destination"] else { throw TaskFailure(description: "no mode") }
    var firstFile: Value = .none
    listLoop: for try await message in context.channel {
        guard case .tuple(let parts) = message else { continue }
        if parts.first == "entries", case .list(let items)? = parts.last {
            for item in items where firstFile == .none {
                if case .list(let fields) = item, fields.count == 6, fields[1] == "f" { firstFile = fields[0] }
            }
        }
        if parts.first == "end" { break listLoop }
    }
    switch mode {
    case "dotdot":
        try await context.channel.send(.tuple(["want", [["../outside", .none]]]))
    case "unlisted":
        try await context.channel.send(.tuple(["want", [["never-listed", .none]]]))
    case "twice":
        try await context.channel.send(.tuple(["want", [[firstFile, .none], [firstFile, .none]]]))
    case "garbage":
        try await context.channel.send(7)
    case "silent":
        for try await _ in context.channel {}
        return
    case "exit-mid-file":
        try await context.channel.send(.tuple(["want", [[firstFile, .none]]]))
        try await context.channel.send(.tuple(["wanted", 1]))
        _ = try await context.channel.receive()  // ("file", path, size)
        _ = try await context.channel.receive()  // the first chunk
        exit(9)
    default:
        throw TaskFailure(description: "unknown mode \(mode)")
    }
    try await context.channel.send(.tuple(["wanted", 1]))
    for try await _ in context.channel {}
}

WorkerMain.run(tasks: tasks)
