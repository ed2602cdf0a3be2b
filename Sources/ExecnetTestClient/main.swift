// execnet-test-client: a client process for the integration tests that kill a client. By default
// it is also its own worker (`worker=self`), which tests that path; an argument gives another spec
// (and a second the task to run, default self-echo). It starts two gateways, checks a round trip
// through each, prints "READY <pid> <pid>" (or "ERROR <error>" and exits 1) and waits to be killed.
// `exec-child SPEC` leaves a command running through the exec task instead.

import Execnet
#if canImport(Glibc)
import Glibc
#endif

var tasks = TaskRegistry()
tasks.register("self-echo") { context in
    for try await item in context.channel { try await context.channel.send(item) }
}
WorkerMain.runIfWorkerProcess(tasks: tasks)

/// `kill-host-check SPEC1 SPEC2 AGENT_PID`: gateways on two hosts; kill the first host's agent and
/// check that its channel's endmarker and error arrive within the liveness bound while the second
/// host keeps working. Prints PASS or FAIL lines; exits 0 only if all hold.
func killHostCheck(_ spec1: String, _ spec2: String, agentPid: Int32) async throws -> Bool {
    let group = try await Group([spec1, spec2])
    var ok = true
    func check(_ condition: Bool, _ what: String) {
        print(condition ? "PASS \(what)" : "FAIL \(what)")
        ok = ok && condition
    }
    let doomed = try group[0].remoteExec("wait-release")
    let survivor = try group[1].remoteExec("wait-release")
    let workerPid = group[0].pid ?? 0
    let queue = try MultiChannel([doomed]).makeReceiveQueue(endmarker: "lost")
    let killedAt = ContinuousClock.now
    // Only the agent is killed: its workers die with it (parent-death signal) and nobody reports
    // them, so the broker's heartbeat bookkeeping is what notices.
    kill(agentPid, SIGKILL)
    let (_, marker) = try await queue.get(timeout: .seconds(10))
    let elapsed = killedAt.duration(to: .now)
    check(marker == "lost", "endmarker for the killed host's channel")
    check(elapsed < .seconds(3), "endmarker within the liveness bound (took \(elapsed))")
    do {
        try await doomed.waitClose(timeout: .seconds(2))
        check(false, "the end of the channel for the killed host")
    } catch let error as ExecnetError where error.code == .endOfChannel && error.peerEnd != nil {
        check(true, "the end of the channel for the killed host: \(error.peerEnd!)")
    }
    var workerGone = false
    for _ in 0..<200 where !workerGone {
        workerGone = kill(workerPid, 0) != 0
        if !workerGone { try await Task.sleep(for: .milliseconds(10)) }
    }
    check(workerGone, "the killed host's worker process is gone")
    try await survivor.send("still here")
    check(try await survivor.receive(timeout: .seconds(10)) == "still here", "the other host keeps working")
    await group.terminate(timeout: .seconds(2))
    return ok
}

if CommandLine.arguments.count == 5, CommandLine.arguments[1] == "kill-host-check" {
    let arguments = CommandLine.arguments
    let passed = try await killHostCheck(arguments[2], arguments[3], agentPid: Int32(arguments[4]) ?? 0)
    exit(passed ? 0 : 1)
}

/// The test worker's `Crashy` typed task (Sources/ExecnetTestWorker/TypedTasks.swift), as a client declares it.
struct CrashyInput: Codable, Sendable {
    var value: Int
    var crashOnceMarker: String?
    var delayMilliseconds: Int
}

enum Crashy: TypedTask {
    typealias Input = CrashyInput
    typealias Output = Int
    static let name = "typed-crashy"
}

/// `map-check SPEC1 SPEC2`: a map of 3,000 typed calls over two gateways on each host; one worker
/// of the first host is SIGKILLed a third of the way in. Every input must be reported exactly once
/// with the right output, the killed worker's inputs requeued, and the lost gateway replaced (on
/// the same host, through the broker). Prints PASS or FAIL lines; exits 0 only if all hold.
func mapCheck(_ spec1: String, _ spec2: String) async throws -> Bool {
    let group = try await Group([spec1, spec1, spec2, spec2])
    var ok = true
    func check(_ condition: Bool, _ what: String) {
        print(condition ? "PASS \(what)" : "FAIL \(what)")
        ok = ok && condition
    }
    let victim = group[0]
    let inputs = (0..<3000).map { CrashyInput(value: $0, delayMilliseconds: 1) }
    let map = group.map(Crashy.self, inputs, inFlightPerGateway: 4, replaceDeadGateways: 1)
    var seen: [Int: Int] = [:]
    var wrong = 0
    var retried = 0
    var hosts: Set<String> = []
    for try await item in map {
        seen[item.index, default: 0] += 1
        if (try? item.get()) != item.index * 2 { wrong += 1 }
        if item.attempts > 1 { retried += 1 }
        if let id = item.gatewayID, let host = group[id]?.spec.host { hosts.insert(host) }
        if seen.count == 1000 { victim.kill(signal: SIGKILL) }
    }
    check(seen.count == 3000 && seen.values.allSatisfy { $0 == 1 }, "map across hosts: every input reported exactly once (\(seen.count))")
    check(wrong == 0, "map across hosts: every output right (\(wrong) wrong)")
    let exit = await victim.join(timeout: .seconds(10))
    check(exit == .signaled(SIGKILL), "map across hosts: the killed worker ended by SIGKILL (\(exit.map { "\($0)" } ?? "still running"))")
    check((1...4).contains(retried), "map across hosts: the killed worker's in-flight inputs ran again (\(retried))")
    let progress = map.progress.current
    check(progress.replaced == 1 && group.count == 5 && group[4].isAlive,
          "map across hosts: the lost gateway was replaced through the broker (\(progress))")
    check(hosts.count == 2, "map across hosts: both hosts' workers produced results (\(hosts.sorted()))")
    await group.terminate(timeout: .seconds(2))
    return ok
}

if CommandLine.arguments.count == 4, CommandLine.arguments[1] == "map-check" {
    let passed = try await mapCheck(CommandLine.arguments[2], CommandLine.arguments[3])
    exit(passed ? 0 : 1)
}

/// `stop-check SPEC`: one gateway whose task waits; prints "READY <pid>", then, when its channel
/// ends (the test stops and continues this process meanwhile), "ENDED <how>", and exits.
if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "stop-check" {
    let group = try await Group([CommandLine.arguments[2]])
    let channel = try group[0].remoteExec("wait-release")
    let queue = try MultiChannel([channel]).makeReceiveQueue(endmarker: "ended")
    print("READY \(getpid())")
    fflush(nil)
    _ = try await queue.get()
    do {
        try await channel.waitClose()
        print("ENDED cleanly")
    } catch {
        print("ENDED \(error)")
    }
    fflush(nil)
    exit(0)
}

/// `exec-child SPEC`: one gateway; its `exec` task starts a shell that starts `sleep 1000` in the
/// background. Prints "READY <gateway pid> <worker pid> <sleep pid>": the first is the process the
/// gateway spawned, the second the worker that said hello (they differ for a wrapper script).
func execChild(_ spec: String) async throws -> Group {
    let group = try Group()
    let gateway = try await group.makeGateway(spec)
    let exec = try gateway.remoteExec("exec", .list(["/bin/sh", "-c", "sleep 1000 & echo $!; wait"]))
    guard case .tuple(let parts) = try await exec.receive(timeout: .seconds(10)), parts.count == 2,
        case .bytes(let bytes) = parts[1], let sleeper = Int32(String(decoding: bytes.filter { $0 != 10 }, as: UTF8.self))
    else { throw ExecnetError(.protocolViolation, "exec did not report the sleeper's pid") }
    print("READY \(gateway.pid ?? 0) \(gateway.remoteInfo?.pid ?? 0) \(sleeper)")
    return group
}

/// Two gateways of SPEC (default: this program as its own worker), a round trip through each
/// running TASK (default self-echo); prints "READY <pid> <pid>".
func twoGateways(_ spec: String, _ task: String) async throws -> Group {
    let group = try await Group([spec, spec])
    for gateway in group {
        let channel = try gateway.remoteExec(task)
        try await channel.send("ping")
        guard try await channel.receive(timeout: .seconds(10)) == "ping" else { exit(1) }
    }
    print("READY " + group.gateways.compactMap(\.pid).map(String.init).joined(separator: " "))
    return group
}

// A failure is one line for the test to read ("ERROR ..."), not a crash. The group lives until
// the process is killed.
let group: Group
do {
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.count == 2, arguments[0] == "exec-child" {
        group = try await execChild(arguments[1])
    } else {
        group = try await twoGateways(arguments.first ?? "popen//worker=self", arguments.dropFirst().first ?? "self-echo")
    }
} catch {
    print("ERROR \(error)")
    fflush(nil)
    exit(1)
}
fflush(nil)
while true {
    try await Task.sleep(for: .seconds(60))
    withExtendedLifetime(group) {}
}
