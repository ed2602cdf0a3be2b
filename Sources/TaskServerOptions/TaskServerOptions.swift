// What the two taskserver examples share: their command-line options, and a start that serves the
// program's tasks when it was started as its own worker (`worker=self`).

import ArgumentParser
import Execnet

/// The options of the taskserver examples.
public struct TaskServerOptions: ParsableArguments {
    /// The number of gateways (worker processes).
    @Option(name: .shortAndLong, help: "Number of gateways (worker processes).")
    public var gateways = 4

    /// The number of tasks: the integers `0..<tasks`.
    @Option(name: .shortAndLong, help: "Number of tasks (the integers 0..<n).")
    public var tasks = 10

    /// The longest random sleep per task, in seconds.
    @Option(help: "Longest random sleep per task, in seconds (the seed uses 2).")
    public var maxSleep = 2.0

    /// Whether to print only the final line.
    @Flag(name: .shortAndLong, help: "Print only the final line.")
    public var quiet = false

    /// The gateway spec.
    @Option(help: "The gateway spec (default: popen//worker=self). A broker spec must name this program as its worker, e.g. broker=tcp://host:5555//worker=/path/to/this/program.")
    public var spec = "popen//worker=self"

    /// The default options.
    public init() {}
}

extension AsyncParsableCommand {
    /// Serves `tasks` if this process was started as a worker (it then never returns), else parses
    /// the command line and runs the command.
    ///
    /// - Parameter tasks: The tasks the program serves as its own worker.
    public static func runAsWorkerOrCommand(tasks: TaskRegistry) async {
        WorkerMain.runIfWorkerProcess(tasks: tasks)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
