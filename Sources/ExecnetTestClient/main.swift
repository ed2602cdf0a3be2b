// execnet-test-client: a client process for the integration tests that kill a client. It is also
// its own worker (`worker=self`), which tests that path. It starts two gateways, checks a round trip
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

let group = try await Group(["popen//worker=self", "popen//worker=self"])
for gateway in group {
    let channel = try gateway.remoteExec("self-echo")
    try await channel.send("ping")
    guard try await channel.receive(timeout: .seconds(10)) == "ping" else { exit(1) }
}
print("READY " + group.gateways.compactMap(\.pid).map(String.init).joined(separator: " "))
fflush(nil)
while true { try await Task.sleep(for: .seconds(60)) }
