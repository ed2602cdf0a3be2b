#!/usr/bin/env bash
# Runtime benchmarks of issue 5, side by side: this project (execnet-bench runtime), Python's
# execnet 2.1.2 with popen gateways (bench/execnet_bench.py in bench/.venv), and a C libzmq
# baseline of the same topology (bench/c/baseline.c: direct over ipc, and through a relay broker
# over TCP loopback). This project also runs through a standalone broker on TCP loopback
# (impl swift_broker: execnet-broker serve plus one execnet-agent, started once per run and
# compared with the C relay). Every figure runs for every implementation in interleaved rounds,
# each in a fresh process; the table gives the median over rounds and the ratios of medians.
#
#   bench/compare.sh [--rounds N] [--json PATH] [--smoke] [--no-build] [--figures LIST]
#
#   --rounds N      interleaved rounds (default 5)
#   --json PATH     where the results go (default bench/results.json for a full run, else
#                   bench/.bin/results-partial.json, so a subset never overwrites the published run)
#   --smoke         one round with small counts, for CI: checks that everything runs; targets
#                   are reported, never asserted
#   --no-build      use the release binaries already built
#   --figures LIST  only these figures, comma-separated (default: startup,group8,rtt,oneway,
#                   taskserver,terminate,death,idle-rss,worker-soak; also: taskserver-map, the
#                   taskserver workload through group.map, and call-rtt, gateway.call against a raw
#                   channel round trip; run them with taskserver for the map-vs-seed ratio;
#                   and metrics: the round trip and one-way figures with a metrics backend
#                   bootstrapped (swift_metrics: the client with execnet-bench --metrics;
#                   swift_broker_metrics: that client through a second broker and agent serving
#                   /metrics) against the same without (swift, swift_broker), ratio on/off); group64,
#                   64 gateways and one reply each; gateway-rss, the client's RSS per idle gateway
#
# BENCH_SCRATCH sets the SwiftPM scratch path (default .build). Exits nonzero only if something
# failed to build or run, never because a target was missed.
set -euo pipefail

cd "$(dirname "$0")/.."
COMMAND="bench/compare.sh${*:+ $*}"
ROUNDS=5
JSON=
SMOKE=0
BUILD=1
FIGURE_LIST=startup,group8,rtt,oneway,taskserver,terminate,death,idle-rss,worker-soak
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --json) JSON="$2"; shift 2 ;;
        --smoke) SMOKE=1; ROUNDS=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --figures) FIGURE_LIST="$2"; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
# bench/results.json holds the published full run; a subset or smoke run goes elsewhere unless told.
if [ -z "$JSON" ]; then
    if [ "$SMOKE" = 0 ] && [ "$FIGURE_LIST" = startup,group8,rtt,oneway,taskserver,terminate,death,idle-rss,worker-soak ]; then
        JSON=bench/results.json
    else
        mkdir -p bench/.bin
        JSON=bench/.bin/results-partial.json
    fi
fi
SCRATCH="${BENCH_SCRATCH:-.build}"
log() { echo "[compare] $*" >&2; }

# --- Build: the release benchmark and its worker, the C baseline, the venv with execnet. ---
# Statically linked Swift runtime, as deploy/ builds every executable (smaller and faster to start).
if [ "$BUILD" = 1 ]; then
    log "building release (scratch path $SCRATCH)"
    swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product execnet-bench 2>&1 | grep -v "prohibited flag" >&2
    swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product ExecnetBenchWorker 2>&1 | grep -v "prohibited flag" >&2
    swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product execnet-broker 2>&1 | grep -v "prohibited flag" >&2
    swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product execnet-agent 2>&1 | grep -v "prohibited flag" >&2
fi
BIN="$(swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)"
for exe in execnet-bench ExecnetBenchWorker execnet-broker execnet-agent; do
    [ -x "$BIN/$exe" ] || { log "release binary $exe missing in $BIN"; exit 1; }
done

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
    SOAK=(--soak-tasks 2000)
else
    COUNTS=(--startup-samples 10 --samples 5 --rtt-count 20000 --small-count 200000 --kib-count 200000 --mib-count 200)
    TASKS=(--tasks 20000)
    SOAK=(--soak-tasks 100000)
fi

RAW="$(mktemp)"
FAILURES="$(mktemp)"
BROKER_DIR="$(mktemp -d)"
BROKER_PID=""
AGENT_PID=""
# Stops the agent (it kills its workers) and then the broker; nothing outlives the script.
cleanup() {
    for pid in ${METRICS_AGENT_PID:-} ${METRICS_BROKER_PID:-}; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ -n "$AGENT_PID" ]; then kill -TERM "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
    if [ -n "$BROKER_PID" ]; then kill -TERM "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
    rm -rf "$RAW" "$FAILURES" "$BROKER_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The standalone broker on TCP loopback (no CURVE: loopback) and one agent with 8 slots that
# may run only the benchmark worker. Started once; every swift_broker measurement goes through it.
"$BIN/execnet-broker" serve --bind "tcp://127.0.0.1:*" --shutdown-grace 1 --log-level warning \
    > "$BROKER_DIR/broker.out" 2> "$BROKER_DIR/broker.err" &
BROKER_PID=$!
for _ in $(seq 100); do grep -q "listening" "$BROKER_DIR/broker.out" && break; sleep 0.1; done
BROKER="$(sed -n 's/^execnet-broker: listening on \([^ ]*\).*/\1/p' "$BROKER_DIR/broker.out")"
[ -n "$BROKER" ] || { cat "$BROKER_DIR/broker.err" >&2; log "execnet-broker did not start"; exit 1; }
"$BIN/execnet-agent" --connect "$BROKER" --name bench --slots 8 --allow "$BIN/ExecnetBenchWorker" \
    --log-level warning > "$BROKER_DIR/agent.out" 2> "$BROKER_DIR/agent.err" &
AGENT_PID=$!
registered=0
for _ in $(seq 100); do
    case "$("$BIN/execnet-broker" status --connect "$BROKER" --json --timeout 1 2>/dev/null || true)" in
        *'"bench"'*) registered=1; break ;;
    esac
    sleep 0.1
done
[ "$registered" = 1 ] || { cat "$BROKER_DIR"/*.err >&2; log "execnet-agent did not register with $BROKER"; exit 1; }
log "broker at $BROKER, agent registered"

# --- For --figures metrics: a second broker and agent, the same but serving /metrics (so their
# metrics backend is bootstrapped and published every second), on ports the kernel picks.
METRICS_BROKER=""
if [[ ",$FIGURE_LIST," == *,metrics,* ]]; then
    "$BIN/execnet-broker" serve --bind "tcp://127.0.0.1:*" --shutdown-grace 1 --log-level warning --http-address 127.0.0.1:0 \
        > "$BROKER_DIR/mbroker.out" 2> "$BROKER_DIR/mbroker.err" &
    METRICS_BROKER_PID=$!
    for _ in $(seq 100); do grep -q "listening" "$BROKER_DIR/mbroker.out" && break; sleep 0.1; done
    METRICS_BROKER="$(sed -n 's/^execnet-broker: listening on \([^ ]*\).*/\1/p' "$BROKER_DIR/mbroker.out")"
    [ -n "$METRICS_BROKER" ] || { cat "$BROKER_DIR/mbroker.err" >&2; log "the metrics broker did not start"; exit 1; }
    "$BIN/execnet-agent" --connect "$METRICS_BROKER" --name bench --slots 8 --allow "$BIN/ExecnetBenchWorker" \
        --log-level warning --http-address 127.0.0.1:0 > "$BROKER_DIR/magent.out" 2> "$BROKER_DIR/magent.err" &
    METRICS_AGENT_PID=$!
    registered=0
    for _ in $(seq 100); do
        case "$("$BIN/execnet-broker" status --connect "$METRICS_BROKER" --json --timeout 1 2>/dev/null || true)" in
            *'"bench"'*) registered=1; break ;;
        esac
        sleep 0.1
    done
    [ "$registered" = 1 ] || { cat "$BROKER_DIR"/m*.err >&2; log "the metrics agent did not register"; exit 1; }
    log "metrics broker at $METRICS_BROKER, agent registered"
fi

# run IMPL FIGURE: one fresh process measuring one figure; its JSON lines go to $RAW.
run() {
    local impl="$1" figure="$2" output status=0
    local bench_figure="$figure"
    # metrics: the round trip and one-way figures, with and without a metrics backend.
    [ "$figure" = metrics ] && bench_figure=rtt,oneway
    local args=(--figure "$bench_figure" "${COUNTS[@]}")
    case "$impl" in
        swift)
            # The round trip also with the blocking API from a thread of its own (reported apart).
            [ "$figure" = rtt ] && args+=(--blocking)
            output="$(timeout 300 "$BIN/execnet-bench" runtime "${args[@]}" "${TASKS[@]}" "${SOAK[@]}")" || status=$? ;;
        swift_broker)
            # The same figures through the broker; only the implementation's name differs. The
            # worker is named as the agent's allow-list names it.
            output="$(timeout 300 "$BIN/execnet-bench" runtime --broker "$BROKER" --worker "$BIN/ExecnetBenchWorker" \
                "${args[@]}" "${TASKS[@]}" "${SOAK[@]}" \
                | sed 's/"impl": "swift"/"impl": "swift_broker"/')" || status=$? ;;
        swift_metrics)
            output="$(timeout 300 "$BIN/execnet-bench" runtime --metrics "${args[@]}" \
                | sed 's/"impl": "swift"/"impl": "swift_metrics"/')" || status=$? ;;
        swift_broker_metrics)
            output="$(timeout 300 "$BIN/execnet-bench" runtime --metrics --broker "$METRICS_BROKER" --worker "$BIN/ExecnetBenchWorker" \
                "${args[@]}" | sed 's/"impl": "swift"/"impl": "swift_broker_metrics"/')" || status=$? ;;
        execnet) output="$(timeout 300 "$VENV/bin/python" bench/execnet_bench.py "${args[@]}" "${TASKS[@]}")" || status=$? ;;
        c_direct) output="$(timeout 300 bench/.bin/baseline direct "${args[@]}" "${TASKS[@]}")" || status=$? ;;
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
        startup) echo "swift execnet c_direct swift_broker" ;;
        group8|idle-rss) echo "swift execnet c_direct" ;;
        group64|gateway-rss) echo "swift execnet" ;;
        rtt|oneway) echo "swift execnet c_direct c_relay swift_broker" ;;
        taskserver|taskserver-map) echo "swift execnet c_direct" ;;
        call-rtt) echo "swift" ;;
        worker-soak) echo "swift swift_broker" ;;
        metrics) echo "swift swift_metrics swift_broker swift_broker_metrics" ;;
        *) echo "swift execnet" ;;
    esac
}

IFS=, read -r -a FIGURES <<< "$FIGURE_LIST"
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

python3 bench/report.py --raw "$RAW" --json "$JSON" --rounds "$ROUNDS" --smoke "$SMOKE" --failures "$FAILURES" \
    --command "$COMMAND"
if [ -s "$FAILURES" ]; then
    log "some measurements failed to run:"
    cat "$FAILURES" >&2
    exit 1
fi
