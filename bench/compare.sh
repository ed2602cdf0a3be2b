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
#                   Scaling curves (issue 16; `curves` names them all, a full run leaves them out):
#                   gateways (N = 1 … 64: start-up, fan-out round trip, terminate, client RSS),
#                   sizes (8 B … 16 MiB: one-way and round trip, popen, broker with CURVE off and
#                   on, execnet, C), channels (1 … 1,000 per gateway), fanin (1 … 64 gateways into
#                   one receive queue), hosts (1 … 4 network-namespace hosts through a broker:
#                   bench/hosts-curve.sh), broker-scale (simulated agents and gateways against one
#                   broker: bench/broker_scale.py). Plots: bench/plot.py --json PATH.
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
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
FIGURE_LIST="${FIGURE_LIST//curves/gateways,sizes,channels,fanin,hosts,broker-scale}"
# The smoke run also checks that the curves run, with small counts (a few seconds).
[ "$SMOKE" = 1 ] && [ "$FIGURE_LIST" = startup,group8,rtt,oneway,taskserver,terminate,death,idle-rss,worker-soak ] \
    && FIGURE_LIST="$FIGURE_LIST,gateways,sizes,channels,fanin,broker-scale"
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
# The curves' simulated broker peers (pyzmq) and the plots (matplotlib, bench/plot.py).
if ! "$VENV/bin/python" -c 'import zmq, matplotlib' 2>/dev/null; then
    log "installing pyzmq and matplotlib into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check pyzmq==27.3.0 matplotlib
fi

# --- Counts. ---
if [ "$SMOKE" = 1 ]; then
    COUNTS=(--startup-samples 2 --samples 1 --rtt-count 300 --small-count 2000 --kib-count 1000 --mib-count 5)
    TASKS=(--tasks 300)
    SOAK=(--soak-tasks 2000)
    GATEWAY_COUNTS=(1 2 4)
    CURVES=(--sizes 8,1024,1048576 --curve-bytes 2097152 --curve-max-items 2000 --fan-out-rounds 5
            --channel-counts 1,10,100 --channel-rounds 3 --fan-in-messages 2000 --gateway-counts 1,2,4)
    C_CURVES=(--sizes 8,1024,1048576 --curve-bytes 2097152 --curve-max-items 2000)
    HOSTS=(--tasks 40 --sleep-ms 20 --gateways-per-host 2)
    SCALE=(--agents 10 --gateways 20 --messages 2000 --idle-seconds 1)
else
    COUNTS=(--startup-samples 10 --samples 5 --rtt-count 20000 --small-count 200000 --kib-count 200000 --mib-count 200)
    TASKS=(--tasks 20000)
    SOAK=(--soak-tasks 100000)
    GATEWAY_COUNTS=(1 2 4 8 16 32 64)
    CURVES=(--samples 3 --curve-bytes 67108864 --curve-max-items 100000 --fan-out-rounds 50 --channel-counts 1,10,100,300,1000
            --channel-rounds 20 --fan-in-messages 200000 --gateway-counts 1,2,4,8,16,32,64)
    C_CURVES=(--curve-bytes 67108864 --curve-max-items 100000)
    HOSTS=(--tasks 4000 --sleep-ms 20 --gateways-per-host 4)
    SCALE=(--agents 10,100,1000 --gateways 100,1000,10000 --messages 100000 --idle-seconds 5)
fi
# Only run the sizes curve through a broker with CURVE when it is asked for (it needs keys).
case ",$FIGURE_LIST," in *,sizes,*) WANT_CURVE_BROKER=1 ;; *) WANT_CURVE_BROKER=0 ;; esac

RAW="$(mktemp)"
FAILURES="$(mktemp)"
BROKER_DIR="$(mktemp -d)"
BROKER_PID=""
AGENT_PID=""
CURVE_BROKER_PID=""
CURVE_AGENT_PID=""
# Stops the agent (it kills its workers) and then the broker; nothing outlives the script.
cleanup() {
    for pid in ${METRICS_AGENT_PID:-} ${METRICS_BROKER_PID:-}; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ -n "$CURVE_AGENT_PID" ]; then kill -TERM "$CURVE_AGENT_PID" 2>/dev/null || true; wait "$CURVE_AGENT_PID" 2>/dev/null || true; fi
    if [ -n "$CURVE_BROKER_PID" ]; then kill -TERM "$CURVE_BROKER_PID" 2>/dev/null || true; wait "$CURVE_BROKER_PID" 2>/dev/null || true; fi
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

# --- For the sizes curve, a second broker as deployed: CURVE on (keys from execnet-broker keygen),
# an agent and a client with keys of their roles. Its measurements are impl swift_broker_curve.
CURVE_BROKER=""
if [ "$WANT_CURVE_BROKER" = 1 ]; then
    for key in broker agent client; do
        "$BIN/execnet-broker" keygen --secret "$BROKER_DIR/$key.key" --public "$BROKER_DIR/$key.pub" > /dev/null
    done
    { echo "agent $(cat "$BROKER_DIR/agent.pub") agents"; echo "client $(cat "$BROKER_DIR/client.pub") client"; } \
        > "$BROKER_DIR/authorized_keys"
    "$BIN/execnet-broker" serve --bind "tcp://127.0.0.1:*" --secret-key "$BROKER_DIR/broker.key" \
        --authorized-keys "$BROKER_DIR/authorized_keys" --shutdown-grace 1 --log-level warning \
        > "$BROKER_DIR/curve-broker.out" 2> "$BROKER_DIR/curve-broker.err" &
    CURVE_BROKER_PID=$!
    for _ in $(seq 100); do grep -qs "listening" "$BROKER_DIR/curve-broker.out" && break; sleep 0.1; done
    CURVE_ENDPOINT="$(sed -n 's/^execnet-broker: listening on \([^ ]*\).*/\1/p' "$BROKER_DIR/curve-broker.out")"
    [ -n "$CURVE_ENDPOINT" ] || { cat "$BROKER_DIR/curve-broker.err" >&2; log "the CURVE broker did not start"; exit 1; }
    "$BIN/execnet-agent" --connect "$CURVE_ENDPOINT" --name bench-curve --slots 8 --allow "$BIN/ExecnetBenchWorker" \
        --server-key "$BROKER_DIR/broker.pub" --secret-key "$BROKER_DIR/agent.key" --log-level warning \
        > "$BROKER_DIR/curve-agent.out" 2> "$BROKER_DIR/curve-agent.err" &
    CURVE_AGENT_PID=$!
    registered=0
    for _ in $(seq 100); do
        case "$("$BIN/execnet-broker" status --connect "$CURVE_ENDPOINT" --server-key "$BROKER_DIR/broker.pub" \
            --secret-key "$BROKER_DIR/client.key" --json --timeout 1 2>/dev/null || true)" in
            *'"bench-curve"'*) registered=1; break ;;
        esac
        sleep 0.1
    done
    [ "$registered" = 1 ] || { cat "$BROKER_DIR"/curve-*.err >&2; log "the CURVE agent did not register"; exit 1; }
    CURVE_BROKER="$CURVE_ENDPOINT//serverkey=$BROKER_DIR/broker.pub//secretkey=$BROKER_DIR/client.key"
    log "CURVE broker at $CURVE_ENDPOINT, agent registered"
fi

# A curve point may take longer than a figure's 300 s bound (64 execnet gateways on a loaded machine):
# within run(), a curve sets CURVE_LIMIT and `timeout` uses it instead of the bound it is given.
timeout() {
    if [ -n "${CURVE_LIMIT:-}" ]; then shift; command timeout "$CURVE_LIMIT" "$@"; else command timeout "$@"; fi
}

# run IMPL FIGURE: one fresh process measuring one figure; its JSON lines go to $RAW.
run() {
    local impl="$1" figure="$2" output status=0
    local bench_figure="$figure"
    # metrics: the round trip and one-way figures, with and without a metrics backend.
    [ "$figure" = metrics ] && bench_figure=rtt,oneway
    local args=(--figure "$bench_figure" "${COUNTS[@]}")
    local CURVE_LIMIT=""
    # A curve point of its own process: gateways:N measures the gateways curve at N only.
    case "$figure" in
        gateways:*) CURVE_LIMIT=1200; args=(--figure gateways "${COUNTS[@]}" "${CURVES[@]}" --gateway-counts "${figure#gateways:}") ;;
        sizes|channels|fanin)
            CURVE_LIMIT=1200
            case "$impl" in c_*) args+=("${C_CURVES[@]}") ;; *) args+=("${CURVES[@]}") ;; esac ;;
    esac
    case "$impl" in
        swift_broker_curve)
            output="$(timeout 1200 "$BIN/execnet-bench" runtime --broker "$CURVE_BROKER" --worker "$BIN/ExecnetBenchWorker" \
                "${args[@]}" | sed 's/"impl": "swift"/"impl": "swift_broker_curve"/')" || status=$? ;;
        hosts)
            output="$(timeout 1200 bench/hosts-curve.sh "$BIN" "${HOSTS[@]}")" || status=$? ;;
        broker_scale)
            output="$(timeout 1800 "$VENV/bin/python" bench/broker_scale.py --broker "$BIN/execnet-broker" "${SCALE[@]}")" \
                || status=$? ;;
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
        gateways:*|channels|fanin) echo "swift execnet" ;;
        sizes) echo "swift execnet c_direct c_relay swift_broker swift_broker_curve" ;;
        hosts) echo "hosts" ;;
        broker-scale) echo "broker_scale" ;;
        worker-soak) echo "swift swift_broker" ;;
        metrics) echo "swift swift_metrics swift_broker swift_broker_metrics" ;;
        *) echo "swift execnet" ;;
    esac
}

IFS=, read -r -a LISTED <<< "$FIGURE_LIST"
# The gateways curve runs each N in a fresh process (so the RSS per gateway starts from a clean heap).
FIGURES=()
for figure in "${LISTED[@]}"; do
    if [ "$figure" = gateways ]; then
        for count in "${GATEWAY_COUNTS[@]}"; do FIGURES+=("gateways:$count"); done
    else
        FIGURES+=("$figure")
    fi
done
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
