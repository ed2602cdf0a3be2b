// execnet-test-client: a client process for the integration tests that kill a client. By default
// it is also its own worker (`worker=self`), which tests that path; an argument gives another spec
// (and a second the task to run, default self-echo). It starts two gateways, checks a round trip
// through each, prints "READY <pid> <pid>" and waits to be killed.

import Execnet
#if canImport(Glibc)
import Glibc
#endif

var tasks = TaskRegistry()
tasks.register("self-echo") { context in
    for try await item in context.channel { try await context.channel.send(item) }
}
WorkerMain.runIfWorkerProcess(tasks: tasks)

let arguments = CommandLine.arguments.dropFirst()
let spec = arguments.first ?? "popen//worker=self"
let task = arguments.dropFirst().first ?? "self-echo"
let group = try await Group([spec, spec])
for gateway in group {
    let channel = try gateway.remoteExec(task)
    try await channel.send("ping")
    guard try await channel.receive(timeout: .seconds(10)) == "ping" else { exit(1) }
}
print("READY " + group.gateways.compactMap(\.pid).map(String.init).joined(separator: " "))
fflush(nil)
while true { try await Task.sleep(for: .seconds(60)) }
