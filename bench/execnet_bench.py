#!/usr/bin/env python3
"""The runtime figures of issue 5 for Python's execnet (2.1.2, popen gateways).

Mirrors `execnet-bench runtime` figure for figure and prints the same JSON lines
(`{"impl": "execnet", "figure": "rtt_us_median", "value": 80.1}`). Run it with the
interpreter of the venv that bench/compare.sh creates; popen gateways start that
same interpreter as their workers.
"""

import argparse
import json
import math
import os
import signal
import sys
import time

import execnet

HELLO = "channel.send(1)"
ECHO = "for item in channel:\n    channel.send(item)"
READY_BLOCK = "channel.send('ready')\nfor item in channel:\n    pass"
ONEWAY = """
count, size = channel.receive()
if size == 0:
    for index in range(count):
        channel.send(index)
else:
    item = b'a' * size
    for index in range(count):
        channel.send(item)
"""
# The seed's taskserver processor, without the sleep.
TASK_PROCESSOR = """
channel.send("ready")
for x in channel:
    if x is None:
        break
    channel.send(x * 10)
"""
PID = "import os\nchannel.send(os.getpid())"


def emit(figure, value):
    print(json.dumps({"impl": "execnet", "figure": figure, "value": round(value, 3)}), flush=True)


def emit_point(figure, x, value):
    """One point of a curve (issue 16): the figure's value at x."""
    print(json.dumps({"impl": "execnet", "figure": figure, "x": x, "value": round(value, 3)}), flush=True)


def median(values):
    return percentile(sorted(values), 0.5)


def percentile(ordered, fraction):
    """Nearest rank, as the Swift and C benchmarks compute it."""
    rank = math.ceil(fraction * len(ordered)) - 1
    return ordered[min(max(rank, 0), len(ordered) - 1)]


def memory(pid):
    """VmRSS and VmHWM of a process in MiB."""
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


def startup(args):
    times = []
    for _ in range(args.startup_samples):
        started = time.perf_counter()
        group = execnet.Group()
        gateway = group.makegateway("popen")
        gateway.remote_exec(HELLO).receive()
        times.append((time.perf_counter() - started) * 1e3)
        group.terminate(timeout=5.0)
    emit("startup_ms", median(times))


def group8(args):
    times = []
    for _ in range(args.samples):
        started = time.perf_counter()
        group = execnet.Group(["popen"] * 8)
        group.remote_exec(HELLO).receive_each()
        times.append((time.perf_counter() - started) * 1e3)
        group.terminate(timeout=5.0)
    emit("group8_startup_ms", median(times))


def group64(args):
    times = []
    for _ in range(args.samples):
        started = time.perf_counter()
        group = execnet.Group(["popen"] * 64)
        group.remote_exec(HELLO).receive_each()
        times.append((time.perf_counter() - started) * 1e3)
        group.terminate(timeout=10.0)
    emit("group64_startup_ms", median(times))


def gateway_rss(args):
    """VmRSS of this process with 1 + N idle gateways minus with 1, per gateway (N = 16, 64)."""
    group = execnet.Group()
    gateways = []

    def grow(count):
        while len(gateways) < count:
            gateway = group.makegateway("popen")
            gateway.remote_exec(HELLO).receive()
            gateways.append(gateway)
        time.sleep(0.2)
        return memory(os.getpid())[0]

    one = grow(1)
    emit("gateway_idle_rss_kib_16", (grow(17) - one) * 1024 / 16)
    emit("gateway_idle_rss_kib_64", (grow(65) - one) * 1024 / 64)
    group.terminate(timeout=10.0)


def rtt(args):
    group = execnet.Group()
    gateway = group.makegateway("popen")
    channel = gateway.remote_exec(ECHO)
    send, receive, clock = channel.send, channel.receive, time.perf_counter_ns
    for index in range(min(1000, args.rtt_count)):
        send(index)
        receive()
    times = [0.0] * args.rtt_count
    for index in range(args.rtt_count):
        started = clock()
        send(index)
        receive()
        times[index] = (clock() - started) / 1e3
    times.sort()
    emit("rtt_us_median", percentile(times, 0.5))
    emit("rtt_us_p99", percentile(times, 0.99))
    channel.close()
    group.terminate(timeout=5.0)


def oneway_seconds(gateway, count, size):
    channel = gateway.remote_exec(ONEWAY)
    receive = channel.receive
    started = time.perf_counter()
    channel.send((count, size))
    for _ in range(count):
        receive()
    elapsed = time.perf_counter() - started
    channel.waitclose(10)
    return elapsed


def oneway(args):
    group = execnet.Group()
    gateway = group.makegateway("popen")
    emit("oneway_small_msgs_per_s", args.small_count / oneway_seconds(gateway, args.small_count, 0))
    emit("oneway_1kib_msgs_per_s", args.kib_count / oneway_seconds(gateway, args.kib_count, 1024))
    seconds = oneway_seconds(gateway, args.mib_count, 1 << 20)
    emit("oneway_1mib_mb_per_s", args.mib_count * (1 << 20) / 1e6 / seconds)
    emit("client_peak_rss_mib", memory(os.getpid())[1])
    group.terminate(timeout=5.0)


def taskserver(args, figure="taskserver_tasks_per_s"):
    """The seed's taskserver (execnet's documentation example), 4 gateways, no sleep."""
    started = time.perf_counter()
    group = execnet.Group()
    for _ in range(4):
        group.makegateway("popen")
    mch = group.remote_exec(TASK_PROCESSOR)
    queue = mch.make_receive_queue(endmarker=-1)
    tasks = list(range(args.tasks))
    results = 0
    terminated = 0
    sent_stop = False
    while True:
        channel, item = queue.get()
        if item == -1:
            terminated += 1
            if terminated == len(mch):
                break
            continue
        if item != "ready":
            results += 1
        if not tasks:
            if not sent_stop:
                mch.send_each(None)
                sent_stop = True
        else:
            channel.send(tasks.pop())
    group.terminate(timeout=5.0)
    elapsed = time.perf_counter() - started
    if results != args.tasks:
        raise SystemExit(f"taskserver: {results} results of {args.tasks}")
    emit(figure, args.tasks / elapsed)


def taskserver_map(args):
    """execnet has no map: its taskserver is the reference the map of this project is compared with."""
    taskserver(args, "taskserver_map_tasks_per_s")


def blocked_group(count):
    group = execnet.Group(["popen"] * count)
    mch = group.remote_exec(READY_BLOCK)
    queue = mch.make_receive_queue(endmarker=-1)
    for _ in range(count):
        _, item = queue.get(timeout=10)
        assert item == "ready", item
    return group, mch, queue


def terminate(args):
    times = []
    for _ in range(args.samples):
        group, _, queue = blocked_group(4)
        started = time.perf_counter()
        group.terminate(timeout=1.0)
        for _ in range(4):
            _, item = queue.get(timeout=10)
            assert item == -1, item
        times.append((time.perf_counter() - started) * 1e3)
    emit("terminate_ms", median(times))


def death(args):
    times = []
    for _ in range(args.samples):
        group, mch, queue = blocked_group(2)
        pid = group[0].remote_exec(PID).receive()
        started = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while True:
            channel, item = queue.get(timeout=10)
            if channel is mch[0] and item == -1:
                break
        times.append((time.perf_counter() - started) * 1e3)
        group.terminate(timeout=5.0)
    emit("death_ms", median(times))


def idle_rss(args):
    group = execnet.Group()
    gateway = group.makegateway("popen")
    pid = gateway.remote_exec(PID).receive()
    time.sleep(0.2)
    rss, hwm = memory(pid)
    emit("idle_worker_rss_mib", rss)
    emit("idle_worker_hwm_mib", hwm)
    group.terminate(timeout=5.0)


# ---- the scaling curves of issue 16 (as `execnet-bench runtime --figure gateways,...`) ----

def int_list(text):
    return [int(part) for part in text.split(",") if part]


def gateways_curve(args):
    """Group start-up, fan-out round trip, client RSS and its growth per gateway, terminate.

    One gateway is started and terminated first (process-wide set-up), as the Swift side does."""
    warm_up = execnet.Group(["popen"])
    warm_up.remote_exec(HELLO).receive_each()
    warm_up.terminate(timeout=5.0)
    for count in int_list(args.gateway_counts):
        startups, fan_outs, terminates, rss, per_gateway = [], [], [], [], []
        for _ in range(args.samples):
            before = memory(os.getpid())[0]
            started = time.perf_counter()
            group = execnet.Group(["popen"] * count)
            group.remote_exec(HELLO).receive_each()
            startups.append((time.perf_counter() - started) * 1e3)
            echo = group.remote_exec(ECHO)
            echo.send_each(0)
            echo.receive_each()
            rounds = []
            for index in range(args.fan_out_rounds):
                sent = time.perf_counter()
                echo.send_each(index)
                echo.receive_each()
                rounds.append((time.perf_counter() - sent) * 1e6)
            fan_outs.append(median(rounds))
            after = memory(os.getpid())[0]
            rss.append(after)
            per_gateway.append((after - before) * 1024 / count)
            stopping = time.perf_counter()
            group.terminate(timeout=5.0)
            terminates.append((time.perf_counter() - stopping) * 1e3)
        emit_point("curve_gateways_startup_ms", count, median(startups))
        emit_point("curve_gateways_fanout_us", count, median(fan_outs))
        emit_point("curve_gateways_terminate_ms", count, median(terminates))
        emit_point("curve_gateways_client_rss_mib", count, median(rss))
        emit_point("curve_gateways_rss_per_gateway_kib", count, median(per_gateway))


def sizes_curve(args):
    """One-way throughput and round trip of byte strings of each size."""
    group = execnet.Group()
    gateway = group.makegateway("popen")
    for size in int_list(args.sizes):
        count = max(4, min(args.curve_max_items, args.curve_bytes // max(size, 1)))
        seconds = oneway_seconds(gateway, count, size)
        emit_point("curve_size_oneway_mb_per_s", size, count * size / 1e6 / seconds)
        trips = max(3, min(args.rtt_count, args.curve_bytes // 8 // max(size, 1)))
        item = b"a" * size
        channel = gateway.remote_exec(ECHO)
        channel.send(item)
        channel.receive()
        times = []
        for _ in range(trips):
            started = time.perf_counter()
            channel.send(item)
            channel.receive()
            times.append((time.perf_counter() - started) * 1e6)
        channel.close()
        emit_point("curve_size_rtt_us", size, median(times))
    group.terminate(timeout=5.0)


def channels_curve(args):
    """K concurrent echo channels on one gateway: opening them, then rounds over all of them."""
    group = execnet.Group()
    gateway = group.makegateway("popen")
    for count in int_list(args.channel_counts):
        started = time.perf_counter()
        channels = [gateway.remote_exec(ECHO) for _ in range(count)]
        for channel in channels:
            channel.send(0)
        for channel in channels:
            channel.receive()
        emit_point("curve_channels_open_ms", count, (time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        for index in range(args.channel_rounds):
            for channel in channels:
                channel.send(index)
            for channel in channels:
                channel.receive()
        elapsed = time.perf_counter() - started
        emit_point("curve_channels_round_trips_per_s", count, count * args.channel_rounds / elapsed)
        for channel in channels:
            channel.close()
        for channel in channels:
            channel.waitclose(30)
    group.terminate(timeout=5.0)


def fanin_curve(args):
    """N gateways each send their share of small ints into one receive queue."""
    for count in int_list(args.gateway_counts):
        group = execnet.Group(["popen"] * count)
        share = max(1, args.fan_in_messages // count)
        mch = group.remote_exec(ONEWAY)
        queue = mch.make_receive_queue(endmarker=-1)
        started = time.perf_counter()
        mch.send_each((share, 0))
        received = ended = 0
        while ended < count:
            _, item = queue.get(timeout=120)
            if item == -1:
                ended += 1
            else:
                received += 1
        elapsed = time.perf_counter() - started
        if received != share * count:
            raise SystemExit(f"fanin: {received} of {share * count}")
        emit_point("curve_fanin_msgs_per_s", count, received / elapsed)
        group.terminate(timeout=5.0)


FIGURES = {
    "startup": startup,
    "group8": group8,
    "rtt": rtt,
    "oneway": oneway,
    "taskserver": taskserver,
    "taskserver-map": taskserver_map,
    "terminate": terminate,
    "death": death,
    "idle-rss": idle_rss,
    "group64": group64,
    "gateway-rss": gateway_rss,
    "gateways": gateways_curve,
    "sizes": sizes_curve,
    "channels": channels_curve,
    "fanin": fanin_curve,
}
CURVES = {"gateways", "sizes", "channels", "fanin"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", default="all")
    parser.add_argument("--startup-samples", type=int, default=10)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--rtt-count", type=int, default=20_000)
    parser.add_argument("--small-count", type=int, default=200_000)
    parser.add_argument("--kib-count", type=int, default=200_000)
    parser.add_argument("--mib-count", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--gateway-counts", default="1,2,4,8,16,32,64")
    parser.add_argument("--sizes", default="8,32,128,512,2048,8192,32768,131072,524288,2097152,8388608,16777216")
    parser.add_argument("--channel-counts", default="1,10,100,300,1000")
    parser.add_argument("--curve-bytes", type=int, default=64 << 20)
    parser.add_argument("--curve-max-items", type=int, default=100_000)
    parser.add_argument("--fan-out-rounds", type=int, default=50)
    parser.add_argument("--channel-rounds", type=int, default=20)
    parser.add_argument("--fan-in-messages", type=int, default=200_000)
    args = parser.parse_args()
    names = [name for name in FIGURES if name not in CURVES] if args.figure == "all" else args.figure.split(",")
    for name in names:
        if name not in FIGURES:
            parser.error(f"unknown figure {name!r}")
        FIGURES[name](args)


if __name__ == "__main__":
    sys.exit(main())
