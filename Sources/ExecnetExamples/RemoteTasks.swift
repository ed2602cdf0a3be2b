// The remote half of the examples: what execnet sends as source strings to `remote_exec` is, in
// Swift, a task registered by name in a worker. This program is its own worker (`worker=self`).

import Execnet
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct ExampleFailure: Error, CustomStringConvertible {
    let description: String
}

/// The worker's `sys.stdout` once a task has redirected it to a channel file.
let remoteStdout = Mutex<ChannelFileWriter?>(nil)

/// The tasks of the examples, by the execnet source they stand for.
func exampleTasks() -> TaskRegistry {
    var tasks = TaskRegistry.builtins

    // "import os; channel.send(os.getcwd())"
    tasks.register("send-cwd") { context in
        try await context.channel.send(.string(currentDirectory()))
    }

    // ch1, ch2 = channel.receive()
    // ch2.send("world")
    // ch1.send("hello")
    tasks.register("send-hello-world") { context in
        guard case .tuple(let pair) = try await context.channel.receive(), pair.count == 2,
            case .channel(let ch1) = pair[0], case .channel(let ch2) = pair[1]
        else { throw ExampleFailure(description: "expected a pair of channels") }
        try await ch2.send("world")
        try await ch1.send("hello")
    }

    // import sys
    // outchan = channel.gateway.newchannel()
    // sys.stdout = outchan.makefile("w")
    // channel.send(outchan)
    tasks.register("redirect-stdout") { context in
        let outchan = context.newChannel()
        remoteStdout.withLock { $0 = outchan.makeWriteFile(proxyClose: true) }
        try await context.channel.send(.channel(outchan))
    }

    // print('hello world')
    // print('remote execution ends')
    tasks.register("print-hello") { context in
        guard var stdout = remoteStdout.withLock({ $0 }) else { throw ExampleFailure(description: "stdout not redirected") }
        print("hello world", to: &stdout)
        try await stdout.flush()
        print("remote execution ends", to: &stdout)
        try await stdout.flush()
    }

    // sys.stdout.close()
    tasks.register("close-stdout") { context in
        let stdout = remoteStdout.withLock { stdout in
            defer { stdout = nil }
            return stdout
        }
        try await stdout?.close()
    }
    return tasks
}

/// This process's working directory (`os.getcwd()`).
func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
