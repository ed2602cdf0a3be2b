// `execnet-bench runtime`: the runtime figures of issue 5 for this project, measured through the
// public async API as users call it. Each run prints one JSON object per figure on stdout
// (`{"impl":"swift","figure":"rtt_us_median","value":71.3}`); bench/compare.sh runs it in
// interleaved rounds beside Python's execnet and the C libzmq baseline and aggregates.
// The worker is ExecnetBenchWorker, built beside this executable (see its main.swift for why).

import ArgumentParser
import CoreMetrics
import Execnet
import Prometheus
#if canImport(Glibc)
import Glibc
#endif

struct RuntimeBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Runtime figures (start-up, round trip, one-way, taskserver, terminate, death, RSS) as JSON lines.",
        discussion: "Run by bench/compare.sh, which compares them with Python's execnet and a C libzmq baseline.")

    @Option(help: "Figure to measure: startup, group8, rtt, oneway, taskserver, taskserver-map, call-rtt, terminate, death, idle-rss, worker-soak, group64, gateway-rss, all; curves: gateways, sizes, channels, fanin, hosts.")
    var figure = "all"

    @Option(help: "Samples for startup (median of these).")
    var startupSamples = 10

    @Option(help: "Samples for group8, terminate and death.")
    var samples = 5

    @Option(help: "Round trips for rtt.")
    var rttCount = 20_000

    @Option(help: "One-way count of small ints.")
    var smallCount = 200_000

    @Option(help: "One-way count of 1 KiB byte strings.")
    var kibCount = 200_000

    @Option(help: "One-way count of 1 MiB byte strings.")
    var mibCount = 200

    @Option(help: "Tasks for the taskserver figure.")
    var tasks = 20_000

    @Option(help: "Tasks for the worker-soak figure (measured after 100 and after this many).")
    var soakTasks = 100_000

    @Option(help: "Worker executable (default: ExecnetBenchWorker beside this program).")
    var worker: String?

    @Option(help: "Run the gateways through this standalone broker (broker=ENDPOINT) instead of popen; its agent must allow the worker.")
    var broker: String?

    @Flag(help: "Also measure the round trip with the blocking API from a thread of its own.")
    var blocking = false

    @Option(help: "How long the idle worker idles before its RSS is read, in milliseconds.")
    var idleMilliseconds = 200

    @Flag(help: "Bootstrap swift-prometheus as the metrics backend first (as execnet-broker --http-address does), so the client records and publishes its metrics while measuring.")
    var metrics = false

    @Option(help: "Only one part of call-rtt (call, raw), for counting instructions per call under callgrind.")
    var only: String?
    @OptionGroup(title: "Curves (figures gateways, sizes, channels, fanin, hosts)")
    var curveOptions: CurveOptions

    mutating func run() async throws {
        if metrics {
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
        }
        let spec = "\(broker.map { "broker=\($0)" } ?? "popen")//worker=\(worker ?? Self.defaultWorker())"
        let bench = RuntimeFigures(spec: spec, options: self)
        let figures = figure == "all"
            ? ["startup", "group8", "rtt", "oneway", "taskserver", "terminate", "death", "idle-rss"]
            : figure.split(separator: ",").map(String.init)
        for name in figures {
            switch name {
            case "startup": try await bench.startup()
            case "group8": try await bench.group8()
            case "rtt": try await bench.roundTrip()
            case "oneway": try await bench.oneway()
            case "taskserver": try await bench.taskserver()
            case "taskserver-map": try await bench.taskserverMap()
            case "call-rtt": try await bench.callRoundTrip()
            case "terminate": try await bench.terminate()
            case "death": try await bench.death()
            case "idle-rss": try await bench.idleRSS()
            case "worker-soak": try await bench.workerSoak()
            case "group64": try await bench.group64()
            case "gateway-rss": try await bench.gatewayRSS()
            case "gateways": try await bench.gatewaysCurve()
            case "sizes": try await bench.sizesCurve()
            case "channels": try await bench.channelsCurve()
            case "fanin": try await bench.fanInCurve()
            case "hosts": try await bench.hostsCurve()
            default: throw ValidationError("unknown figure '\(name)'")
            }
        }
    }

    /// ExecnetBenchWorker in the directory of this executable.
    static func defaultWorker() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        return directory + "/ExecnetBenchWorker"
    }
}

/// The typed task of the map and call figures (ExecnetBenchWorker registers the same type).
enum TimesTen: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "times-ten"
}

/// The measurements. Each prints its figures as JSON lines.
struct RuntimeFigures: Sendable {
    let spec: String
    let startupSamples: Int
    let samples: Int
    let rttCount: Int
    let smallCount: Int
    let kibCount: Int
    let mibCount: Int
    let taskCount: Int
    let blocking: Bool
    let idleMilliseconds: Int
    let soakTasks: Int
    /// One part of a two-part figure only (instruction counting).
    let only: String?
    let curve: CurveSettings

    init(spec: String, options: RuntimeBenchmark) {
        self.spec = spec
        startupSamples = options.startupSamples
        samples = options.samples
        rttCount = options.rttCount
        smallCount = options.smallCount
        kibCount = options.kibCount
        mibCount = options.mibCount
        taskCount = options.tasks
        blocking = options.blocking
        idleMilliseconds = options.idleMilliseconds
        soakTasks = options.soakTasks
        only = options.only
        curve = CurveSettings(options.curveOptions)
    }

    // MARK: 1, 2: start-up

    /// A new group, one gateway, one task, its first reply (terminate not counted).
    func startup() async throws {
        var times: [Double] = []
        for _ in 0..<startupSamples {
            let started = ContinuousClock.now
            let group = try Group()
            let gateway = try await group.makeGateway(spec)
            let channel = try gateway.remoteExec("hello")
            _ = try await channel.receive()
            times.append(milliseconds(started.duration(to: .now)))
            await group.terminate(timeout: .seconds(5))
        }
        emit("startup_ms", median(times))
    }

    /// A group of 8 gateways (started in parallel), one reply from each.
    func group8() async throws {
        var times: [Double] = []
        for _ in 0..<samples {
            let started = ContinuousClock.now
            let group = try await Group(Array(repeating: spec, count: 8))
            let channels = try group.remoteExec("hello")
            _ = try await channels.receiveEach()
            times.append(milliseconds(started.duration(to: .now)))
            await group.terminate(timeout: .seconds(5))
        }
        emit("group8_startup_ms", median(times))
    }

    /// A group of 64 gateways (started in parallel), one reply from each (issue 16's target).
    func group64() async throws {
        var times: [Double] = []
        for _ in 0..<samples {
            let started = ContinuousClock.now
            let group = try await Group(Array(repeating: spec, count: 64))
            let channels = try group.remoteExec("hello")
            _ = try await channels.receiveEach()
            times.append(milliseconds(started.duration(to: .now)))
            await group.terminate(timeout: .seconds(10))
        }
        emit("group64_startup_ms", median(times))
    }

    /// The client's memory per idle gateway: VmRSS of this process with 1 + N idle gateways
    /// (each has answered one task and idled) minus VmRSS with 1, divided by N, for N = 16 and 64.
    /// The first gateway is left out, so the I/O thread and the runtime it starts are not counted.
    func gatewayRSS() async throws {
        let group = try Group()
        var gateways: [Gateway] = []
        func grow(to count: Int) async throws -> Double {
            let added = count - gateways.count
            guard added > 0 else { return ProcessMemory.read(pid: getpid()).rss }
            let started = try await withThrowingTaskGroup(of: Gateway.self) { tasks in
                for _ in 0..<added { tasks.addTask { try await group.makeGateway(spec) } }
                var started: [Gateway] = []
                for try await gateway in tasks { started.append(gateway) }
                return started
            }
            for gateway in started { _ = try await gateway.remoteExec("hello").receive() }
            gateways += started
            try await Task.sleep(for: .milliseconds(idleMilliseconds))
            return ProcessMemory.read(pid: getpid()).rss
        }
        let one = try await grow(to: 1)
        let seventeen = try await grow(to: 17)
        emit("gateway_idle_rss_kib_16", (seventeen - one) * 1024 / 16)
        let sixtyFive = try await grow(to: 65)
        emit("gateway_idle_rss_kib_64", (sixtyFive - one) * 1024 / 64)
        await group.terminate(timeout: .seconds(10))
    }

    // MARK: 3: round trip

    /// A small int through the echo task, one message in flight: on the execnet I/O thread
    /// (`withExecnetIOThread`, the main figure), and from the cooperative pool (the default).
    func roundTrip() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        let channel = try gateway.remoteExec("echo")
        let times = try await withExecnetIOThread { try await roundTrips(channel) }
        emit("rtt_us_median", percentile(times, 0.5))
        emit("rtt_us_p99", percentile(times, 0.99))
        let poolTimes = try await roundTrips(channel)
        emit("rtt_pool_us_median", percentile(poolTimes, 0.5))
        emit("rtt_pool_us_p99", percentile(poolTimes, 0.99))
        // The same with a timed receive (120 s, as a caller that guards against a hang would).
        let timedTimes = try await withExecnetIOThread { try await roundTrips(channel, timeout: .seconds(120)) }
        emit("rtt_timed_us_median", percentile(timedTimes, 0.5))
        let timedPoolTimes = try await roundTrips(channel, timeout: .seconds(120))
        emit("rtt_timed_pool_us_median", percentile(timedPoolTimes, 0.5))
        if blocking {
            let blockingTimes = try blockingRoundTrips(channel, count: rttCount).sorted()
            emit("rtt_blocking_us_median", percentile(blockingTimes, 0.5))
            emit("rtt_blocking_us_p99", percentile(blockingTimes, 0.99))
        }
        try channel.close()
        await group.terminate(timeout: .seconds(5))
    }

    /// Warm-up, then `rttCount` timed round trips, sorted; each receive waits at most `timeout`.
    private func roundTrips(_ channel: Channel, timeout: Duration? = nil) async throws -> [Double] {
        for index in 0..<min(1_000, rttCount) {
            try await channel.send(.int(Int64(index)))
            _ = try await channel.receive(timeout: timeout)
        }
        var times = [Double](repeating: 0, count: rttCount)
        for index in 0..<rttCount {
            let started = ContinuousClock.now
            try await channel.send(.int(Int64(index)))
            _ = try await channel.receive(timeout: timeout)
            times[index] = microseconds(started.duration(to: .now))
        }
        return times.sorted()
    }

    // MARK: 4: one-way

    /// The worker sends small ints, 1 KiB and 1 MiB byte strings; then this process's peak RSS.
    func oneway() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        let small = try await onewaySeconds(gateway, count: smallCount, size: 0)
        emit("oneway_small_msgs_per_s", Double(smallCount) / small)
        let kib = try await onewaySeconds(gateway, count: kibCount, size: 1024)
        emit("oneway_1kib_msgs_per_s", Double(kibCount) / kib)
        let mib = try await onewaySeconds(gateway, count: mibCount, size: 1 << 20)
        emit("oneway_1mib_mb_per_s", Double(mibCount) * Double(1 << 20) / 1e6 / mib)
        emit("client_peak_rss_mib", ProcessMemory.read(pid: getpid()).hwm)
        await group.terminate(timeout: .seconds(5))
    }

    private func onewaySeconds(_ gateway: Gateway, count: Int, size: Int) async throws -> Double {
        let channel = try gateway.remoteExec("oneway", .int(Int64(count)), .int(Int64(size)))
        let elapsed = try await withExecnetIOThread {
            let started = ContinuousClock.now
            try await channel.send("go")
            for _ in 0..<count { _ = try await channel.receive() }
            return started.duration(to: .now)
        }
        try await channel.waitClose(timeout: .seconds(10))
        return seconds(elapsed)
    }

    // MARK: 5: taskserver

    /// The seed's taskserver: 4 gateways, `taskCount` tasks returning x*10, no sleep; start-up and
    /// terminate included.
    func taskserver() async throws {
        let started = ContinuousClock.now
        let group = try await Group(Array(repeating: spec, count: 4))
        let channels = try group.remoteExec("task-processor")
        let queue = try channels.makeReceiveQueue(endmarker: -1)
        let results = try await withExecnetIOThread {
            var pending = Array((0..<taskCount).reversed())
            var results = 0
            var terminated = 0
            var sentStop = false
            while terminated < channels.count {
                let (channel, item) = try await queue.get()
                if item == -1 {
                    terminated += 1
                    continue
                }
                if item != "ready" { results += 1 }
                if pending.isEmpty {
                    if !sentStop {
                        try await channels.sendEach(.none)
                        sentStop = true
                    }
                } else {
                    try await channel.send(.int(Int64(pending.removeLast())))
                }
            }
            return results
        }
        await group.terminate(timeout: .seconds(5))
        let elapsed = seconds(started.duration(to: .now))
        guard results == taskCount else { throw ValidationError("taskserver: \(results) results of \(taskCount)") }
        emit("taskserver_tasks_per_s", Double(taskCount) / elapsed)
    }

    /// The taskserver's workload through `group.map` of a typed task: 4 gateways, `taskCount`
    /// inputs, 4 calls in flight per gateway; start-up and terminate included, as for `taskserver`.
    func taskserverMap() async throws {
        let started = ContinuousClock.now
        let group = try await Group(Array(repeating: spec, count: 4))
        var results = 0
        for try await item in group.map(TimesTen.self, 0..<taskCount, inFlightPerGateway: 4) {
            guard try item.get() == item.index * 10 else { throw ValidationError("taskserver-map: wrong result for \(item.index)") }
            results += 1
        }
        await group.terminate(timeout: .seconds(5))
        let elapsed = seconds(started.duration(to: .now))
        guard results == taskCount else { throw ValidationError("taskserver-map: \(results) results of \(taskCount)") }
        emit("taskserver_map_tasks_per_s", Double(taskCount) / elapsed)
    }

    /// `gateway.call` of a typed task against a raw channel round trip on an open channel (the
    /// echo task), both from the default thread pool, in alternating blocks of the same process.
    func callRoundTrip() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        let channel = try gateway.remoteExec("echo")
        let blocks = 10
        let perBlock = max(1, rttCount / blocks)
        let calls = only != "raw", raws = only != "call"
        for index in 0..<min(1_000, rttCount) {
            if calls { _ = try await gateway.call(TimesTen.self, index) }
            if raws {
                try await channel.send(.int(Int64(index)))
                _ = try await channel.receive()
            }
        }
        var callTimes: [Double] = []
        var rawTimes: [Double] = []
        for _ in 0..<blocks {
            for index in 0..<perBlock where calls {
                let started = ContinuousClock.now
                _ = try await gateway.call(TimesTen.self, index)
                callTimes.append(microseconds(started.duration(to: .now)))
            }
            for index in 0..<perBlock where raws {
                let started = ContinuousClock.now
                try await channel.send(.int(Int64(index)))
                _ = try await channel.receive()
                rawTimes.append(microseconds(started.duration(to: .now)))
            }
        }
        if calls { emit("call_rtt_pool_us_median", percentile(callTimes.sorted(), 0.5)) }
        if raws { emit("call_raw_rtt_pool_us_median", percentile(rawTimes.sorted(), 0.5)) }
        try channel.close()
        await group.terminate(timeout: .seconds(5))
    }

    // MARK: 6, 7: terminate and death

    /// 4 gateways blocked in receive; terminate(timeout: 1 s) until all 4 endmarkers are taken.
    func terminate() async throws {
        var times: [Double] = []
        for _ in 0..<samples {
            let (group, _, queue) = try await blockedGroup(4)
            let started = ContinuousClock.now
            await group.terminate(timeout: .seconds(1))
            for _ in 0..<4 {
                let (_, item) = try await queue.get(timeout: .seconds(10))
                guard item == -1 else { throw ValidationError("terminate: unexpected item \(item)") }
            }
            times.append(milliseconds(started.duration(to: .now)))
        }
        emit("terminate_ms", median(times))
    }

    /// SIGKILL one of 2 workers blocked in receive; time until its endmarker is taken.
    func death() async throws {
        var times: [Double] = []
        for _ in 0..<samples {
            let (group, channels, queue) = try await blockedGroup(2)
            guard let pid = group[0].pid else { throw ValidationError("death: no pid") }
            let started = ContinuousClock.now
            kill(pid, SIGKILL)
            while true {
                let (channel, item) = try await queue.get(timeout: .seconds(10))
                if channel === channels[0] && item == -1 { break }
            }
            times.append(milliseconds(started.duration(to: .now)))
            await group.terminate(timeout: .seconds(5))
        }
        emit("death_ms", median(times))
    }

    /// A group of `count` gateways whose tasks said "ready" and now wait in receive, with a
    /// receive queue whose endmarker is -1.
    private func blockedGroup(_ count: Int) async throws -> (Group, MultiChannel, ReceiveQueue) {
        let group = try await Group(Array(repeating: spec, count: count))
        let channels = try group.remoteExec("ready-block")
        let queue = try channels.makeReceiveQueue(endmarker: -1)
        for _ in 0..<count {
            let (_, item) = try await queue.get(timeout: .seconds(10))
            guard item == "ready" else { throw ValidationError("expected ready, got \(item)") }
        }
        return (group, channels, queue)
    }

    // MARK: 8: idle worker RSS

    /// VmRSS and VmHWM of one idle worker that has answered one task.
    func idleRSS() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        _ = try await gateway.remoteExec("hello").receive()
        try await Task.sleep(for: .milliseconds(idleMilliseconds))
        guard let pid = gateway.pid else { throw ValidationError("idle-rss: no pid") }
        let memory = ProcessMemory.read(pid: pid)
        emit("idle_worker_rss_mib", memory.rss)
        emit("idle_worker_hwm_mib", memory.hwm)
        await group.terminate(timeout: .seconds(5))
    }

    // MARK: 9: worker soak

    /// One worker runs trivial tasks, 100 at a time: its RSS and channel count (from
    /// `remoteStatus`) after 100 tasks and after `soakTasks`. Finished channels must cost nothing,
    /// so both pairs should be equal.
    func workerSoak() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        guard let pid = gateway.pid else { throw ValidationError("worker-soak: no pid") }
        var done = 0
        func run(until total: Int) async throws {
            while done < total {
                let batch = min(100, total - done)
                var channels: [Channel] = []
                for _ in 0..<batch { channels.append(try gateway.remoteExec("hello")) }
                for channel in channels {
                    _ = try await channel.receive(timeout: .seconds(30))
                    try await channel.waitClose(timeout: .seconds(30))
                }
                done += batch
            }
        }
        try await run(until: 100)
        emit("worker_soak_channels_100", Double(try await gateway.remoteStatus().channelCount))
        emit("worker_soak_rss_100_mib", ProcessMemory.read(pid: pid).rss)
        try await run(until: max(soakTasks, 100))
        emit("worker_soak_channels", Double(try await gateway.remoteStatus().channelCount))
        emit("worker_soak_rss_mib", ProcessMemory.read(pid: pid).rss)
        await group.terminate(timeout: .seconds(5))
    }

    // MARK: - Output

    private func emit(_ figure: String, _ value: Double) {
        let rounded = (value * 1000).rounded() / 1000
        print("{\"impl\": \"swift\", \"figure\": \"\(figure)\", \"value\": \(rounded)}")
        fflush(nil)
    }
}

// MARK: - Helpers

/// Round trips with the blocking API from a thread of its own (the async loop is the main figure).
private func blockingRoundTrips(_ channel: Channel, count: Int) throws -> [Double] {
    final class Box: @unchecked Sendable {
        var times: [Double] = []
        var error: (any Error)?
    }
    let box = Box()
    let body: @Sendable () -> Void = {
        do {
            var times = [Double](repeating: 0, count: count)
            for index in 0..<count {
                let started = ContinuousClock.now
                try channel.sendBlocking(.int(Int64(index)))
                _ = try channel.receiveBlocking()
                times[index] = microseconds(started.duration(to: .now))
            }
            box.times = times
        } catch {
            box.error = error
        }
    }
    let unmanaged = Unmanaged.passRetained(BlockingBody(body))
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let body = Unmanaged<BlockingBody>.fromOpaque(raw!).takeRetainedValue()
        body.run()
        return nil
    }, unmanaged.toOpaque())
    guard rc == 0 else { throw ValidationError("pthread_create failed: \(rc)") }
    pthread_join(thread, nil)
    if let error = box.error { throw error }
    return box.times
}

private final class BlockingBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// VmRSS and VmHWM of a process, in MiB, from /proc/PID/status.
enum ProcessMemory {
    static func read(pid: Int32) -> (rss: Double, hwm: Double) {
        guard let file = fopen("/proc/\(pid)/status", "r") else { return (0, 0) }
        defer { fclose(file) }
        var rss = 0.0, hwm = 0.0
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let kib = Double(text.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            if text.hasPrefix("VmRSS:") { rss = kib / 1024 }
            if text.hasPrefix("VmHWM:") { hwm = kib / 1024 }
        }
        return (rss, hwm)
    }
}

private func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

private func milliseconds(_ duration: Duration) -> Double { seconds(duration) * 1e3 }

private func microseconds(_ duration: Duration) -> Double { seconds(duration) * 1e6 }

private func median(_ values: [Double]) -> Double { percentile(values.sorted(), 0.5) }

/// The `fraction` percentile of sorted values (nearest rank).
private func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}
