// taskserver: the seed's example 5. A group of local gateways pulls tasks from one receive queue;
// every result arrives exactly once and termination is clean. The program is its own worker:
// gateways re-execute it (`worker=self`) and it serves the `task-processor` task.

import ArgumentParser
import Execnet
import TaskServerOptions
#if canImport(Glibc)
import Glibc
#endif

/// The remote task processor: say "ready", then for each item sleep a random time and send it back
/// times ten, until the none value arrives.
func processorTasks() -> TaskRegistry {
    var tasks = TaskRegistry()
    tasks.register("task-processor") { context in
        let maxSleep = context["max_sleep"]?.doubleValue ?? 2.0
        try await context.channel.send("ready")
        for try await item in context.channel {
            guard case .int(let number) = item else { break }
            if maxSleep > 0 {
                try await Task.sleep(for: .seconds(Double.random(in: 0...maxSleep)))
            }
            try await context.channel.send(.int(number * 10))
        }
    }
    return tasks
}

@main
struct TaskServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taskserver",
        abstract: "Saturate local CPUs with tasks: the seed's taskserver example.",
        version: execnetVersionText)

    @OptionGroup var options: TaskServerOptions

    mutating func run() async throws {
        let started = ContinuousClock.now
        let group = try await Group(Array(repeating: options.spec, count: options.gateways))
        let channels = try group.remoteExec("task-processor", arguments: [], keywordArguments: ["max_sleep": .float(options.maxSleep)])
        let queue = try channels.makeReceiveQueue(endmarker: -1)
        var pending = Array((0..<options.tasks).reversed())
        var results: [Int64] = []
        var terminated = 0
        var sentStop = false
        while terminated < channels.count {
            let (channel, item) = try await queue.get()
            if item == -1 {
                terminated += 1
                if !options.quiet { print("terminated \(channel.gatewayID)") }
                continue
            }
            if item != "ready" {
                guard case .int(let result) = item else { continue }
                results.append(result)
                if !options.quiet { print("\(channel.gatewayID) returned \(result)") }
            }
            if pending.isEmpty {
                if !sentStop {
                    try await channels.sendEach(.none)
                    sentStop = true
                }
            } else {
                let task = pending.removeLast()
                if !options.quiet { print("\(channel.gatewayID) gets task \(task)") }
                try await channel.send(.int(Int64(task)))
            }
        }
        await group.terminate(timeout: .seconds(5))
        let elapsed = started.duration(to: .now)
        print("results: \(results.count) of \(options.tasks); sorted: \(results.sorted() == (0..<Int64(options.tasks)).map { $0 * 10 } ? "complete" : "INCOMPLETE"); elapsed: \(elapsed)")
        if results.sorted() != (0..<Int64(options.tasks)).map({ $0 * 10 }) { throw ExitCode.failure }
    }

    static func main() async {
        await runAsWorkerOrCommand(tasks: processorTasks())
    }
}
