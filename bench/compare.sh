#!/usr/bin/env bash
# Runtime benchmarks of issue 5, side by side: this project (execnet-bench runtime), Python's
# execnet 2.1.2 with popen gateways (bench/execnet_bench.py in bench/.venv), and a C libzmq
# baseline of the same topology (bench/c/baseline.c: direct over ipc, and through a relay broker
# over TCP loopback). Every figure runs for every implementation in interleaved rounds, each in a
# fresh process; the table gives the median over rounds and the ratios of medians of this run.
#
#   bench/compare.sh [--rounds N] [--json PATH] [--smoke] [--no-build]
#
#   --rounds N   interleaved rounds (default 5)
#   --json PATH  where the results go (default bench/results.json)
#   --smoke      one round with small counts, for CI: checks that everything runs; targets are
#                reported, never asserted
#   --no-build   use the release binaries already built
#
# BENCH_SCRATCH sets the SwiftPM scratch path (default .build). Exits nonzero only if something
# failed to build or run, never because a target was missed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=5
JSON=bench/results.json
SMOKE=0
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --json) JSON="$2"; shift 2 ;;
        --smoke) SMOKE=1; ROUNDS=1; shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
SCRATCH="${BENCH_SCRATCH:-.build}"
log() { echo "[compare] $*" >&2; }

# --- Build: the release benchmark and its worker, the C baseline, the venv with execnet. ---
if [ "$BUILD" = 1 ]; then
    log "building release (scratch path $SCRATCH)"
    swift build -c release --scratch-path "$SCRATCH" --product execnet-bench 2>&1 | grep -v "prohibited flag" >&2
    swift build -c release --scratch-path "$SCRATCH" --product ExecnetBenchWorker 2>&1 | grep -v "prohibited flag" >&2
fi
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
[ -x "$BIN/execnet-bench" ] && [ -x "$BIN/ExecnetBenchWorker" ] || { log "release binaries missing in $BIN"; exit 1; }

mkdir -p bench/.bin
# shellcheck disable=SC2046
cc -O2 -o bench/.bin/baseline bench/c/baseline.c $(pkg-config --cflags --libs libzmq)

VENV=bench/.venv
if ! "$VENV/bin/python" -c 'import execnet, sys; sys.exit(execnet.__version__ != "2.1.2")' 2>/dev/null; then
    log "creating $VENV with execnet 2.1.2"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check execnet==2.1.2
fi

# --- Counts. ---
if [ "$SMOKE" = 1 ]; then
    COUNTS=(--startup-samples 2 --samples 1 --rtt-count 300 --small-count 2000 --kib-count 1000 --mib-count 5)
    TASKS=(--tasks 300)
else
    COUNTS=(--startup-samples 10 --samples 5 --rtt-count 20000 --small-count 200000 --kib-count 200000 --mib-count 200)
    TASKS=(--tasks 20000)
fi

RAW="$(mktemp)"
FAILURES="$(mktemp)"
trap 'rm -f "$RAW" "$FAILURES"' EXIT

# run IMPL FIGURE: one fresh process measuring one figure; its JSON lines go to $RAW.
run() {
    local impl="$1" figure="$2" output status=0
    local args=(--figure "$figure" "${COUNTS[@]}")
    case "$impl" in
        swift)
            # The round trip also with the blocking API from a thread of its own (reported apart).
            [ "$figure" = rtt ] && args+=(--blocking)
            output="$(timeout 300 "$BIN/execnet-bench" runtime "${args[@]}" "${TASKS[@]}")" || status=$? ;;
        execnet) output="$(timeout 300 "$VENV/bin/python" bench/execnet_bench.py "${args[@]}" "${TASKS[@]}")" || status=$? ;;
        c_direct) output="$(timeout 300 bench/.bin/baseline direct "${args[@]}")" || status=$? ;;
        c_relay) output="$(timeout 300 bench/.bin/baseline relay "${args[@]}")" || status=$? ;;
    esac
    if [ "$status" != 0 ]; then
        log "FAILED: $impl $figure (exit $status)"
        echo "$impl $figure exit $status" >> "$FAILURES"
    fi
    [ -n "$output" ] && echo "$output" >> "$RAW"
    return 0
}

# Which implementations measure a figure (the C baseline has no Group, taskserver or termination).
impls_for() {
    case "$1" in
        startup|group8|idle-rss) echo "swift execnet c_direct" ;;
        rtt|oneway) echo "swift execnet c_direct c_relay" ;;
        *) echo "swift execnet" ;;
    esac
}

FIGURES=(startup group8 rtt oneway taskserver terminate death idle-rss)
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for figure in "${FIGURES[@]}"; do
        # Rotate the order each round, so no implementation always runs first.
        read -r -a impls <<< "$(impls_for "$figure")"
        count=${#impls[@]}
        for ((i = 0; i < count; i++)); do
            run "${impls[$(((i + round) % count))]}" "$figure"
        done
    done
done

python3 bench/report.py --raw "$RAW" --json "$JSON" --rounds "$ROUNDS" --smoke "$SMOKE" --failures "$FAILURES"
if [ -s "$FAILURES" ]; then
    log "some measurements failed to run:"
    cat "$FAILURES" >&2
    exit 1
fi
