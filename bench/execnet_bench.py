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
}


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
    args = parser.parse_args()
    names = list(FIGURES) if args.figure == "all" else args.figure.split(",")
    for name in names:
        if name not in FIGURES:
            parser.error(f"unknown figure {name!r}")
        FIGURES[name](args)


if __name__ == "__main__":
    sys.exit(main())
