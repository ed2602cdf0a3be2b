// taskserver-map: the seed's taskserver job done with `group.map`. The program is its own worker
// (`worker=self`) and serves the typed task `TimesTen`; the client maps it over 0..<n on a group of
// gateways, pipelining a few calls per gateway, and shows a live progress line on a terminal.

import ArgumentParser
import Execnet
import TaskServerOptions
#if canImport(Glibc)
import Glibc
#endif

/// The task: sleep a random time up to `maxSleep` seconds, then return the number times ten.
enum TimesTen: TypedTask {
    struct Input: Codable, Sendable {
        var number: Int
        var maxSleep: Double
    }
    typealias Output = Int
    static let name = "times-ten"
}

func workerTasks() -> TaskRegistry {
    var tasks = TaskRegistry()
    tasks.register(TimesTen.self) { input, _ in
        if input.maxSleep > 0 { try await Task.sleep(for: .seconds(Double.random(in: 0...input.maxSleep))) }
        return input.number * 10
    }
    return tasks
}

@main
struct TaskServerMap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taskserver-map",
        abstract: "The taskserver example with group.map: typed calls, pipelining, requeue on worker death.",
        version: execnetVersionText)

    @OptionGroup var options: TaskServerOptions

    @Option(help: "Calls in flight per gateway.")
    var inFlight = 4

    mutating func run() async throws {
        let started = ContinuousClock.now
        let group = try await Group(Array(repeating: options.spec, count: options.gateways))
        let maxSleep = options.maxSleep
        let inputs = (0..<options.tasks).lazy.map { TimesTen.Input(number: $0, maxSleep: maxSleep) }
        let map = group.map(TimesTen.self, Array(inputs), inFlightPerGateway: inFlight)
        let terminal = isatty(1) == 1 && !options.quiet
        var results: [Int] = []
        var failures = 0
        for try await item in map {
            switch item.result {
            case .success(let output): results.append(output)
            case .failure(let failure):
                failures += 1
                if !options.quiet { print("task \(item.index) failed: \(failure)") }
            }
            if terminal {
                print("\r\(map.progress.current)", terminator: "")
                fflush(nil)
            } else if !options.quiet {
                print("\(item.gatewayID ?? "-") returned \(item.result) for task \(item.index)")
            }
        }
        if terminal { print("") }
        await group.terminate(timeout: .seconds(5))
        let complete = results.sorted() == (0..<options.tasks).map { $0 * 10 }
        print("results: \(results.count) of \(options.tasks); sorted: \(complete ? "complete" : "INCOMPLETE"); failures: \(failures); elapsed: \(started.duration(to: .now))")
        if !complete { throw ExitCode.failure }
    }

    static func main() async {
        await runAsWorkerOrCommand(tasks: workerTasks())
    }
}
