#!/usr/bin/env python3
"""Aggregates the JSON lines of bench/compare.sh into one table and a JSON file.

Each figure's value is the median over rounds of one implementation; ratios are this project's
median over the other's (so < 1 is better for times and memory, > 1 for rates). "swift_broker" is
this project through the standalone broker on TCP loopback; its ratios are against the C relay
broker ("ratio_broker" in the JSON). Targets are reported, never asserted. Standard library only:
runs with the system python3.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

IMPLS = ["swift", "execnet", "c_direct", "c_relay", "swift_broker"]
# What this project (popen gateways) is compared with, and what it is through the broker.
OTHERS = ["execnet", "c_direct", "c_relay"]
BROKER_OTHERS = ["c_relay"]

# figure, label, unit, lower is better
FIGURES = [
    ("startup_ms", "startup (1 gateway, first reply)", "ms"),
    ("group8_startup_ms", "group of 8, one reply each", "ms"),
    ("rtt_us_median", "round trip, median", "µs"),
    ("rtt_us_p99", "round trip, p99", "µs"),
    ("rtt_pool_us_median", "round trip from the pool (no I/O-thread preference), median", "µs"),
    ("rtt_blocking_us_median", "round trip, blocking API, median", "µs"),
    ("rtt_timed_us_median", "round trip, receive(timeout: 120 s), median", "µs"),
    ("rtt_timed_pool_us_median", "round trip, receive(timeout: 120 s) from the pool, median", "µs"),
    ("oneway_small_msgs_per_s", "one-way small ints", "msgs/s"),
    ("oneway_1kib_msgs_per_s", "one-way 1 KiB", "msgs/s"),
    ("oneway_1mib_mb_per_s", "one-way 1 MiB", "MB/s"),
    ("taskserver_tasks_per_s", "taskserver, 4 gateways", "tasks/s"),
    ("taskserver_map_tasks_per_s", "taskserver workload through group.map (execnet: its taskserver; C: pipelined)", "tasks/s"),
    ("call_rtt_pool_us_median", "gateway.call round trip from the pool, median", "µs"),
    ("call_raw_rtt_pool_us_median", "raw channel round trip from the pool (same run as gateway.call), median", "µs"),
    ("terminate_ms", "terminate 4 blocked gateways", "ms"),
    ("death_ms", "death seen (SIGKILL to endmarker)", "ms"),
    ("idle_worker_rss_mib", "idle worker RSS", "MiB"),
    ("client_peak_rss_mib", "client peak RSS during one-way", "MiB"),
    ("group64_startup_ms", "group of 64, one reply each", "ms"),
    ("gateway_idle_rss_kib_16", "client RSS per idle gateway, 16 gateways", "KiB"),
    ("gateway_idle_rss_kib_64", "client RSS per idle gateway, 64 gateways", "KiB"),
    ("worker_soak_rss_100_mib", "worker RSS after 100 tasks", "MiB"),
    ("worker_soak_rss_mib", "worker RSS after the soak (100,000 tasks)", "MiB"),
    ("worker_soak_channels_100", "worker channels after 100 tasks", "channels"),
    ("worker_soak_channels", "worker channels after the soak", "channels"),
]

# The scaling curves (issue 16): figure -> (label, unit, x label). Their JSON lines carry an "x";
# the JSON keeps them under "curves", figure -> impl -> x -> median over rounds.
CURVES = {
    "curve_gateways_startup_ms": ("group start-up, one reply each", "ms", "gateways"),
    "curve_gateways_fanout_us": ("fan-out round trip (one item to each gateway and back)", "µs", "gateways"),
    "curve_gateways_terminate_ms": ("terminate the group", "ms", "gateways"),
    "curve_gateways_client_rss_mib": ("client RSS with the group up", "MiB", "gateways"),
    "curve_gateways_rss_per_gateway_kib": ("client RSS growth per gateway", "KiB", "gateways"),
    "curve_size_oneway_mb_per_s": ("one-way throughput", "MB/s", "item size (bytes)"),
    "curve_size_rtt_us": ("round trip of one item", "µs", "item size (bytes)"),
    "curve_channels_open_ms": ("open K echo channels, one round trip each", "ms", "channels on one gateway"),
    "curve_channels_round_trips_per_s": ("round trips over K concurrent channels", "round trips/s", "channels on one gateway"),
    "curve_fanin_msgs_per_s": ("N gateways into one receive queue", "msgs/s", "gateways"),
    "curve_hosts_tasks_per_s": ("tasks that wait 20 ms, through the broker", "tasks/s", "hosts"),
    "curve_hosts_broker_cpu_us_per_msg": ("broker CPU per forwarded message", "µs", "hosts"),
    "curve_scale_heartbeat_cpu_us_per_peer_s": ("broker heartbeat CPU per peer", "µs/s", "peers (agents + gateways)"),
    "curve_scale_routing_cpu_us_per_msg": ("broker CPU per routed message", "µs", "peers (agents + gateways)"),
    "curve_scale_routing_msgs_per_s": ("routed messages per second", "msgs/s", "peers (agents + gateways)"),
    "curve_scale_broker_rss_mib": ("broker RSS", "MiB", "peers (agents + gateways)"),
    "curve_scale_rss_per_agent_kib": ("broker memory per agent", "KiB", "agents"),
    "curve_scale_rss_per_gateway_kib": ("broker memory per gateway", "KiB", "gateways"),
}

# Ratios of two figures of this project from the same run: (label, figure, over figure, operator,
# bound, must), ratio = swift's median of the first / swift's median of the second.
CROSS_TARGETS = [
    ("group.map vs the seed-pattern taskserver", "taskserver_map_tasks_per_s", "taskserver_tasks_per_s", ">=", 1.5, True),
    ("gateway.call vs a raw channel round trip", "call_rtt_pool_us_median", "call_raw_rtt_pool_us_median", "<=", 1.15, True),
]

# figure -> [(other implementation, operator, ratio, must)]; ratio = this project / other.
# Through the broker (issue 6): ratio = swift_broker / other.
BROKER_TARGETS = {
    "rtt_us_median": [("c_relay", "<=", 1.3, True)],
    "oneway_small_msgs_per_s": [("c_relay", ">=", 0.5, True)],
}
TARGETS = {
    "rtt_us_median": [("execnet", "<=", 1.0, True), ("c_direct", "<=", 1.3, True)],
    "oneway_small_msgs_per_s": [("execnet", ">=", 3.0, True), ("c_direct", ">=", 0.5, False)],
    "oneway_1mib_mb_per_s": [("execnet", ">=", 2.0, True), ("c_direct", ">=", 0.6, True)],
    "startup_ms": [("execnet", "<=", 0.25, True)],
    "group8_startup_ms": [("execnet", "<=", 0.15, True)],
    "taskserver_tasks_per_s": [("execnet", ">=", 3.0, True)],
    "taskserver_map_tasks_per_s": [("execnet", ">=", 3.0, True)],
    "terminate_ms": [("execnet", "<=", 1.0, True)],
    "death_ms": [("execnet", "<=", 1.0, True)],
    "idle_worker_rss_mib": [("execnet", "<=", 0.75, True)],
    # Issue 16.
    "client_peak_rss_mib": [("execnet", "<=", 1.0, True)],
    "group64_startup_ms": [("execnet", "<=", 0.1, True)],
}


def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    system = ""
    try:
        with open("/etc/os-release") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    system = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    swift = command_output(["swift", "--version"]).splitlines()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "os": system,
        "kernel": platform.release(),
        "swift": swift[0] if swift else "",
        "libzmq": command_output(["pkg-config", "--modversion", "libzmq"]),
        "python": platform.python_version(),
        "execnet": "2.1.2",
    }


def fmt(value):
    if value is None:
        return "n/a"
    if value >= 10_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--smoke", type=int, default=0)
    parser.add_argument("--failures")
    parser.add_argument("--command")
    args = parser.parse_args()

    values = {}
    curve_values = {}
    with open(args.raw) as raw:
        for line in raw:
            line = line.strip()
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if "x" in record:
                curve_values.setdefault(record["figure"], {}).setdefault(record["impl"], {}) \
                    .setdefault(str(record["x"]), []).append(record["value"])
                continue
            values.setdefault(record["figure"], {}).setdefault(record["impl"], []).append(record["value"])
    medians = {
        figure: {impl: statistics.median(samples) for impl, samples in by_impl.items()}
        for figure, by_impl in values.items()
    }

    rows = []
    results = {"figures": {}, "targets": []}
    for figure, label, unit in FIGURES:
        by_impl = medians.get(figure, {})
        if not by_impl:
            continue

        def ratios_of(impl, others):
            this = by_impl.get(impl)
            return {other: this / by_impl[other] for other in others
                    if this is not None and by_impl.get(other)}

        ratios = ratios_of("swift", OTHERS)
        broker_ratios = ratios_of("swift_broker", BROKER_OTHERS)
        results["figures"][figure] = {
            "label": label,
            "unit": unit,
            "median": by_impl,
            "rounds": values.get(figure, {}),
            "ratio": ratios,
            "ratio_broker": broker_ratios,
        }
        rows.append((f"{label} ({unit})", [fmt(by_impl.get(impl)) for impl in IMPLS],
                     [f"{ratios[o]:.2f}x" if o in ratios else "n/a" for o in OTHERS]
                     + [f"{broker_ratios[o]:.2f}x" if o in broker_ratios else "n/a" for o in BROKER_OTHERS]))
        for impl, table, found in (("swift", TARGETS, ratios), ("swift_broker", BROKER_TARGETS, broker_ratios)):
            for other, operator, bound, must in table.get(figure, []):
                ratio = found.get(other)
                met = None if ratio is None else (ratio <= bound if operator == "<=" else ratio >= bound)
                results["targets"].append({
                    "impl": impl, "figure": figure, "versus": other, "target": f"{operator} {bound}x",
                    "must": must, "ratio": ratio, "met": met,
                })

    for label, figure, over, operator, bound, must in CROSS_TARGETS:
        this = medians.get(figure, {}).get("swift")
        base = medians.get(over, {}).get("swift")
        ratio = this / base if this is not None and base else None
        met = None if ratio is None else (ratio <= bound if operator == "<=" else ratio >= bound)
        results["targets"].append({
            "impl": "swift", "figure": figure, "versus": f"swift {over}", "target": f"{operator} {bound}x",
            "must": must, "ratio": ratio, "met": met, "label": label,
        })

    # Metrics on vs off (--figures metrics): the same client, and the same broker and agent, with a
    # metrics backend bootstrapped over without; ratio = on / off (1.00: recording costs nothing).
    metrics_pairs = [("swift_metrics", "swift"), ("swift_broker_metrics", "swift_broker")]
    metrics_rows = []
    for figure, label, unit in FIGURES:
        by_impl = medians.get(figure, {})
        pairs = {on: by_impl[on] / by_impl[off] for on, off in metrics_pairs if by_impl.get(on) and by_impl.get(off)}
        if pairs:
            results["figures"][figure]["ratio_metrics"] = pairs
            metrics_rows.append((f"{label} ({unit})", [fmt(by_impl.get(impl)) for pair in metrics_pairs for impl in reversed(pair)]
                                 + [f"{pairs[on]:.3f}x" if on in pairs else "n/a" for on, _ in metrics_pairs]))
    if curve_values:
        results["curves"] = {}
    for figure, by_impl in curve_values.items():
        label, unit, x_label = CURVES.get(figure, (figure, "", "x"))
        results["curves"][figure] = {
            "label": label, "unit": unit, "x_label": x_label,
            "median": {impl: {x: statistics.median(samples) for x, samples in points.items()}
                       for impl, points in by_impl.items()},
            "rounds": by_impl,
        }

    results["machine"] = machine()
    results["rounds"] = args.rounds
    results["smoke"] = bool(args.smoke)
    results["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["command"] = args.command or (
        "bench/compare.sh" + (" --smoke" if args.smoke else f" --rounds {args.rounds}"))
    if args.failures and os.path.exists(args.failures):
        with open(args.failures) as failures:
            results["failures"] = [line.strip() for line in failures if line.strip()]

    header = ["figure", "this project", "execnet", "C direct", "C relay", "via broker",
              "vs execnet", "vs C direct", "vs C relay", "broker vs C relay"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for label, cells, ratios in rows:
        print("| " + " | ".join([label] + cells + ratios) + " |")
    print()
    m = results["machine"]
    print(f"{m['cores']} cores ({m['cpu']}), {m['os']}, {m['swift']}, libzmq {m['libzmq']}, "
          f"Python {m['python']}, execnet {m['execnet']}; {args.rounds} interleaved round(s)"
          f"{' (smoke: small counts)' if args.smoke else ''}; medians over rounds, ratios of medians.")
    print()
    print("Targets (ratio = this project / other; via broker: swift_broker / other):")
    for target in results["targets"]:
        ratio = "n/a" if target["ratio"] is None else f"{target['ratio']:.2f}x"
        state = "n/a" if target["met"] is None else ("met" if target["met"] else "MISSED")
        kind = "" if target["must"] else " (aim)"
        via = " via broker" if target["impl"] == "swift_broker" else ""
        print(f"  {target['figure']}{via} vs {target['versus']}: {ratio}, target {target['target']}{kind}: {state}")
    if metrics_rows:
        header = ["figure", "metrics off", "metrics on", "via broker, off", "via broker, on", "on/off", "on/off via broker"]
        print()
        print("Metrics on vs off (a metrics backend bootstrapped in the client, and in the broker and agent):")
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for label, cells in metrics_rows:
            print("| " + " | ".join([label] + cells) + " |")
    for figure, curve in results.get("curves", {}).items():
        print(f"\nCurve {figure}: {curve['label']} ({curve['unit']}) against {curve['x_label']}")
        for impl, points in sorted(curve["median"].items()):
            ordered = sorted(points.items(), key=lambda item: float(item[0]))
            print(f"  {impl:20} " + "  ".join(f"{x}: {fmt(value)}" for x, value in ordered))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump(results, out, indent=2, sort_keys=True)
        out.write("\n")
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    sys.exit(main())
