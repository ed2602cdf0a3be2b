// The test worker's side of its typed tasks: the task types come from ExecnetTestTasks (shared
// with the tests), the state and errors of their implementations are here.

@_exported import ExecnetTestTasks
import Synchronization

/// How many `Hang` calls started and were cancelled in this worker.
let typedCounters = Mutex(HangCounters(started: 0, cancelled: 0))

/// What `Flaky` throws the first time it sees its marker.
struct Transient: Error, CustomStringConvertible {
    var description: String { "transient failure" }
}
