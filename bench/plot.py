#!/usr/bin/env python3
"""Plots of the scaling curves (issue 16) from bench/compare.sh's JSON, as PNGs for docs/PERFORMANCE.md.

  bench/.venv/bin/python bench/plot.py [--json PATH ...] [--out docs/img]

Reads the "curves" of each JSON file (default bench/results.json; several files are merged, a later
one's points replacing an earlier one's) and writes one PNG per curve group that has data:
curve-gateways.png, curve-sizes.png, curve-channels.png, curve-fanin.png, curve-hosts.png,
curve-broker-scale.png. Every implementation measured is drawn beside this project (execnet, the
C baseline); axes are logarithmic where the x values span decades. Needs matplotlib (bench/.venv,
which bench/compare.sh sets up).
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# impl -> (legend, colour, marker)
IMPLS = {
    "swift": ("swift-execnet, popen", "tab:orange", "o"),
    "swift_broker": ("swift-execnet via broker", "tab:red", "s"),
    "swift_broker_curve": ("swift-execnet via broker, CURVE on", "tab:purple", "D"),
    "execnet": ("Python execnet 2.1.2, popen", "tab:blue", "^"),
    "c_direct": ("C libzmq, direct", "tab:gray", "v"),
    "c_relay": ("C libzmq, relay broker", "black", "x"),
}

# file, title, [(figure, log x, log y)]
GROUPS = [
    ("curve-gateways.png", "Gateways on one machine", [
        ("curve_gateways_startup_ms", True, True),
        ("curve_gateways_fanout_us", True, True),
        ("curve_gateways_terminate_ms", True, True),
        ("curve_gateways_rss_per_gateway_kib", True, False),
    ]),
    ("curve-sizes.png", "Item size", [
        ("curve_size_oneway_mb_per_s", True, True),
        ("curve_size_rtt_us", True, True),
    ]),
    ("curve-channels.png", "Concurrent channels on one gateway", [
        ("curve_channels_open_ms", True, True),
        ("curve_channels_round_trips_per_s", True, False),
    ]),
    ("curve-fanin.png", "Gateways feeding one receive queue", [
        ("curve_fanin_msgs_per_s", True, False),
    ]),
    ("curve-hosts.png", "Hosts through the broker (network namespaces, CURVE on)", [
        ("curve_hosts_tasks_per_s", False, False),
        ("curve_hosts_broker_cpu_us_per_msg", False, False),
    ]),
    ("curve-broker-scale.png", "One broker under simulated agents and gateways", [
        ("curve_scale_heartbeat_cpu_us_per_peer_s", True, False),
        ("curve_scale_routing_cpu_us_per_msg", True, False),
        ("curve_scale_rss_per_agent_kib", True, False),
        ("curve_scale_rss_per_gateway_kib", True, False),
    ]),
]


def size_label(value, _position=None):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} B"


def load(paths):
    curves, sources = {}, []
    for path in paths:
        with open(path) as file:
            results = json.load(file)
        sources.append(f"{os.path.basename(path)}: {results.get('date', '?')}, {results.get('rounds', '?')} round(s)")
        for figure, curve in results.get("curves", {}).items():
            merged = curves.setdefault(figure, {key: curve[key] for key in ("label", "unit", "x_label")})
            merged.setdefault("median", {})
            for impl, points in curve["median"].items():
                merged["median"].setdefault(impl, {}).update(points)
    return curves, sources


def draw(axis, figure, curve, log_x, log_y):
    drawn = False
    for impl, (legend, colour, marker) in IMPLS.items():
        points = curve["median"].get(impl)
        if not points:
            continue
        ordered = sorted((float(x), value) for x, value in points.items() if value is not None)
        if not ordered:
            continue
        xs, ys = zip(*ordered)
        axis.plot(xs, ys, label=legend, color=colour, marker=marker, markersize=4, linewidth=1.2)
        drawn = True
    if log_x:
        axis.set_xscale("log", base=2 if "size" not in figure else 4)
    if log_y:
        axis.set_yscale("log")
    else:
        axis.set_ylim(bottom=0)  # a flat curve looks flat
    if "size" in figure:
        axis.xaxis.set_major_formatter(plt.FuncFormatter(size_label))
        axis.tick_params(axis="x", labelrotation=45)
    elif log_x:
        axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda value, _p: f"{value:g}"))
    axis.set_title(f"{curve['label']}", fontsize=9)
    axis.set_xlabel(curve["x_label"], fontsize=8)
    axis.set_ylabel(curve["unit"], fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(True, which="major", alpha=0.3)
    return drawn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="append", help="results JSON (repeatable; default bench/results.json)")
    parser.add_argument("--out", default="docs/img", help="where the PNGs go")
    args = parser.parse_args()
    curves, sources = load(args.json or ["bench/results.json"])
    os.makedirs(args.out, exist_ok=True)
    written = []
    for name, title, panels in GROUPS:
        present = [panel for panel in panels if panel[0] in curves]
        if not present:
            continue
        columns = min(2, len(present))
        rows = (len(present) + columns - 1) // columns
        fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
        handles = {}
        for axis, (figure, log_x, log_y) in zip(axes.flat, present):
            draw(axis, figure, curves[figure], log_x, log_y)
            for handle, label in zip(*axis.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        for axis in list(axes.flat)[len(present):]:
            axis.set_visible(False)
        fig.suptitle(title, fontsize=11)
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(3, len(handles)), fontsize=8,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(handles) - 1) // 3), 1, 1))
        path = os.path.join(args.out, name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    for path in written:
        print(f"plot: wrote {path}")
    if not written:
        print("plot: no curves in " + ", ".join(sources), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
