// The scaling curves of issue 16 (`execnet-bench runtime --figure gateways,sizes,channels,fanin,hosts`):
// how each cost grows with the number of gateways, the item size, the channels per gateway and the
// hosts behind a broker. Each point prints one JSON line with its x value
// (`{"impl": "swift", "figure": "curve_gateways_startup_ms", "x": 8, "value": 41.2}`); bench/compare.sh
// runs them beside Python's execnet and the C baseline, bench/report.py keeps them under "curves"
// and bench/plot.py draws them.

import ArgumentParser
import Execnet
#if canImport(Glibc)
import Glibc
#endif

/// The x values and counts of the curve figures.
struct CurveOptions: ParsableArguments {
    @Option(help: "Gateway counts of the gateways and fanin curves, comma-separated.")
    var gatewayCounts = "1,2,4,8,16,32,64"

    @Option(help: "Item sizes in bytes of the sizes curve, comma-separated.")
    var sizes = "8,32,128,512,2048,8192,32768,131072,524288,2097152,8388608,16777216"

    @Option(help: "Concurrent channels per gateway of the channels curve, comma-separated.")
    var channelCounts = "1,10,100,300,1000"

    @Option(help: "Bytes sent one way per point of the sizes curve (the item count is this over the size, clamped).")
    var curveBytes = 64 << 20

    @Option(help: "Most items per point of the sizes curve.")
    var curveMaxItems = 100_000

    @Option(help: "Fan-out rounds per gateway count (one message to each gateway and back).")
    var fanOutRounds = 50

    @Option(help: "Rounds of one round trip on every channel, per channel count.")
    var channelRounds = 20

    @Option(help: "Small ints sent in all by the gateways of one fanin point.")
    var fanInMessages = 200_000

    @Option(help: "Agent names of the hosts curve, comma-separated (through --broker; the curve runs 1 … all of them).")
    var hosts = ""

    @Option(help: "Gateways per host in the hosts curve.")
    var gatewaysPerHost = 4

    @Option(help: "How long each task of the hosts curve waits, in milliseconds.")
    var sleepMilliseconds = 20

    @Option(help: "The broker's pid, whose CPU the hosts curve reads from /proc (optional).")
    var brokerPid: Int32?

    static func list(_ text: String) -> [Int] { text.split(separator: ",").compactMap { Int($0) } }
}

/// The values of `CurveOptions`, as the measurements read them.
struct CurveSettings: Sendable {
    let gatewayCounts, sizes, channelCounts: [Int]
    let curveBytes, curveMaxItems, fanOutRounds, channelRounds, fanInMessages: Int
    let hosts: [String]
    let gatewaysPerHost, sleepMilliseconds: Int
    let brokerPid: Int32?

    init(_ options: CurveOptions) {
        gatewayCounts = CurveOptions.list(options.gatewayCounts)
        sizes = CurveOptions.list(options.sizes)
        channelCounts = CurveOptions.list(options.channelCounts)
        curveBytes = options.curveBytes
        curveMaxItems = options.curveMaxItems
        fanOutRounds = options.fanOutRounds
        channelRounds = options.channelRounds
        fanInMessages = options.fanInMessages
        hosts = options.hosts.split(separator: ",").map(String.init)
        gatewaysPerHost = options.gatewaysPerHost
        sleepMilliseconds = options.sleepMilliseconds
        brokerPid = options.brokerPid
    }
}

extension RuntimeFigures {
    // MARK: gateways

    /// For each gateway count N: group start-up (N gateways, one reply each), the fan-out round
    /// trip (one item to each gateway's echo task and one back from each), the client's RSS with
    /// the group up and its growth per gateway over the RSS before the group, and terminate.
    ///
    /// One gateway is started and terminated first, so the process-wide set-up (the hub, its I/O
    /// thread) is in place and neither counted as start-up nor as memory per gateway.
    func gatewaysCurve() async throws {
        let warmUp = try await Group([spec])
        _ = try await warmUp.remoteExec("hello").receiveEach()
        await warmUp.terminate(timeout: .seconds(5))
        for count in curve.gatewayCounts {
            var startups: [Double] = [], fanOuts: [Double] = [], terminates: [Double] = []
            var rss: [Double] = [], perGateway: [Double] = []
            for _ in 0..<samples {
                let before = ProcessMemory.read(pid: getpid()).rss
                let started = ContinuousClock.now
                let group = try await Group(Array(repeating: spec, count: count))
                _ = try await group.remoteExec("hello").receiveEach()
                startups.append(curveMilliseconds(started.duration(to: .now)))
                let echo = try group.remoteExec("echo")
                try await echo.sendEach(.int(0))
                _ = try await echo.receiveEach()
                var rounds: [Double] = []
                for index in 0..<curve.fanOutRounds {
                    let sent = ContinuousClock.now
                    try await echo.sendEach(.int(Int64(index)))
                    _ = try await echo.receiveEach()
                    rounds.append(curveMicroseconds(sent.duration(to: .now)))
                }
                fanOuts.append(curveMedian(rounds))
                let after = ProcessMemory.read(pid: getpid()).rss
                rss.append(after)
                perGateway.append((after - before) * 1024 / Double(count))
                let stopping = ContinuousClock.now
                await group.terminate(timeout: .seconds(5))
                terminates.append(curveMilliseconds(stopping.duration(to: .now)))
            }
            emitPoint("curve_gateways_startup_ms", count, curveMedian(startups))
            emitPoint("curve_gateways_fanout_us", count, curveMedian(fanOuts))
            emitPoint("curve_gateways_terminate_ms", count, curveMedian(terminates))
            emitPoint("curve_gateways_client_rss_mib", count, curveMedian(rss))
            emitPoint("curve_gateways_rss_per_gateway_kib", count, curveMedian(perGateway))
        }
    }

    // MARK: sizes

    /// For each item size: one-way throughput (the worker sends byte strings of that size) and the
    /// round trip of one such item through the echo task.
    func sizesCurve() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        for size in curve.sizes {
            let count = max(4, min(curve.curveMaxItems, curve.curveBytes / max(size, 1)))
            let channel = try gateway.remoteExec("oneway", .int(Int64(count)), .int(Int64(size)))
            let elapsed = try await withExecnetIOThread {
                let started = ContinuousClock.now
                try await channel.send("go")
                for _ in 0..<count { _ = try await channel.receive() }
                return started.duration(to: .now)
            }
            try await channel.waitClose(timeout: .seconds(60))
            emitPoint("curve_size_oneway_mb_per_s", size, Double(count) * Double(size) / 1e6 / curveSeconds(elapsed))

            let trips = max(3, min(rttCount, curve.curveBytes / 8 / max(size, 1)))
            let item = Value.bytes([UInt8](repeating: 0x61, count: size))
            let echo = try gateway.remoteExec("echo")
            let times = try await withExecnetIOThread {
                try await echo.send(item)
                _ = try await echo.receive()
                var times: [Double] = []
                for _ in 0..<trips {
                    let started = ContinuousClock.now
                    try await echo.send(item)
                    _ = try await echo.receive()
                    times.append(curveMicroseconds(started.duration(to: .now)))
                }
                return times
            }
            try echo.close()
            emitPoint("curve_size_rtt_us", size, curveMedian(times))
        }
        await group.terminate(timeout: .seconds(5))
    }

    // MARK: channels

    /// For each count K of concurrent channels on one gateway: opening K echo channels with one
    /// round trip each, then rounds of one item on every channel and one back from every channel
    /// (round trips per second).
    func channelsCurve() async throws {
        let group = try Group()
        let gateway = try await group.makeGateway(spec)
        for count in curve.channelCounts {
            let started = ContinuousClock.now
            var channels: [Channel] = []
            for _ in 0..<count { channels.append(try gateway.remoteExec("echo")) }
            for channel in channels { try await channel.send(.int(0)) }
            for channel in channels { _ = try await channel.receive() }
            emitPoint("curve_channels_open_ms", count, curveMilliseconds(started.duration(to: .now)))
            let rounds = curve.channelRounds
            let elapsed = try await withExecnetIOThread {
                let started = ContinuousClock.now
                for index in 0..<rounds {
                    for channel in channels { try await channel.send(.int(Int64(index))) }
                    for channel in channels { _ = try await channel.receive() }
                }
                return started.duration(to: .now)
            }
            emitPoint("curve_channels_round_trips_per_s", count, Double(count * rounds) / curveSeconds(elapsed))
            for channel in channels { try channel.close() }
            for channel in channels { try await channel.waitClose(timeout: .seconds(30)) }
        }
        await group.terminate(timeout: .seconds(5))
    }

    /// For each gateway count N: N gateways each send their share of `fanInMessages` small ints,
    /// all taken from one receive queue (group start-up not counted).
    func fanInCurve() async throws {
        for count in curve.gatewayCounts {
            let group = try await Group(Array(repeating: spec, count: count))
            let share = max(1, curve.fanInMessages / count)
            let channels = try group.remoteExec("oneway", .int(Int64(share)), .int(0))
            let queue = try channels.makeReceiveQueue(endmarker: -1)
            let (received, elapsed) = try await withExecnetIOThread {
                let started = ContinuousClock.now
                let go: Value = "go"
                try await channels.sendEach(go)
                var received = 0, ended = 0
                while ended < count {
                    let (_, item) = try await queue.get(timeout: .seconds(120))
                    if item == -1 { ended += 1 } else { received += 1 }
                }
                return (received, started.duration(to: .now))
            }
            guard received == share * count else { throw ValidationError("fanin: \(received) of \(share * count)") }
            emitPoint("curve_fanin_msgs_per_s", count, Double(received) / curveSeconds(elapsed))
            await group.terminate(timeout: .seconds(5))
        }
    }

    // MARK: hosts

    /// Through a broker (`--broker`), for 1 … all of `--hosts`: `gatewaysPerHost` gateways on each
    /// host, each running tasks that wait `sleepMilliseconds` (one in flight per gateway), `tasks`
    /// tasks in all: tasks per second, and the broker's CPU per forwarded message (DATA each way
    /// per task) when `--broker-pid` is given. The hosts share this machine's cores, so the tasks
    /// wait rather than compute: the throughput is bound by latency and slots, not by CPU.
    func hostsCurve() async throws {
        let hosts = curve.hosts
        guard !hosts.isEmpty else { throw ValidationError("hosts: give --hosts and --broker") }
        for used in 1...hosts.count {
            let specs = hosts.prefix(used).flatMap { host in
                Array(repeating: "\(spec)//host=\(host)", count: curve.gatewaysPerHost)
            }
            let group = try await Group(specs)
            let channels = try group.remoteExec("sleeper")
            let queue = try channels.makeReceiveQueue(endmarker: -1)
            for _ in 0..<channels.count {
                let (_, item) = try await queue.get(timeout: .seconds(30))
                guard item == "ready" else { throw ValidationError("hosts: expected ready, got \(item)") }
            }
            let cpuBefore = curve.brokerPid.map(processCPUSeconds)
            let started = ContinuousClock.now
            var sent = 0, results = 0
            for channel in channels.channels where sent < taskCount {
                try await channel.send(.int(Int64(curve.sleepMilliseconds)))
                sent += 1
            }
            while results < taskCount {
                let (channel, item) = try await queue.get(timeout: .seconds(60))
                guard item != -1 else { throw ValidationError("hosts: a gateway ended early") }
                results += 1
                if sent < taskCount {
                    try await channel.send(.int(Int64(curve.sleepMilliseconds)))
                    sent += 1
                }
            }
            let elapsed = curveSeconds(started.duration(to: .now))
            emitPoint("curve_hosts_tasks_per_s", used, Double(taskCount) / elapsed)
            if let pid = curve.brokerPid, let before = cpuBefore {
                let cpu = processCPUSeconds(pid) - before
                emitPoint("curve_hosts_broker_cpu_us_per_msg", used, cpu * 1e6 / Double(2 * taskCount))
            }
            await group.terminate(timeout: .seconds(5))
        }
    }

    // MARK: - Output

    private func emitPoint(_ figure: String, _ x: Int, _ value: Double) {
        let rounded = (value * 1000).rounded() / 1000
        print("{\"impl\": \"swift\", \"figure\": \"\(figure)\", \"x\": \(x), \"value\": \(rounded)}")
        fflush(nil)
    }
}

/// User plus system CPU seconds of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks).
func processCPUSeconds(_ pid: Int32) -> Double {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    guard fgets(&line, Int32(line.count), file) != nil else { return 0 }
    let text = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    guard let close = text.lastIndex(of: ")") else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[0] is the state (field 3), so utime (field 14) is fields[11] and stime fields[12].
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

private func curveSeconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

private func curveMilliseconds(_ duration: Duration) -> Double { curveSeconds(duration) * 1e3 }

private func curveMicroseconds(_ duration: Duration) -> Double { curveSeconds(duration) * 1e6 }

/// The median (nearest rank, as the other figures).
private func curveMedian(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = Int((0.5 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}
