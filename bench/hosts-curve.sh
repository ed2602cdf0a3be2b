#!/usr/bin/env bash
# The hosts curve of issue 16, run by bench/compare.sh (--figures hosts): a broker with CURVE on and
# four host agents, each in a network namespace of its own joined by veth pairs to a bridge
# (10.78.0.0/24; as scripts/multihost-test.sh, which uses 10.77.0.0/24), and the client in a sixth.
# Where namespaces cannot be made (no CAP_NET_ADMIN), everything runs on 127.0.0.x instead. The
# client runs `execnet-bench runtime --figure hosts` over 1, 2, 3 and 4 hosts: tasks that wait
# (the hosts share this machine's cores), and the broker's CPU per message read from
# /proc/<broker pid>/stat. Prints the JSON lines of the points (impl swift_broker_curve).
#
#   bench/hosts-curve.sh BIN [--tasks N] [--sleep-ms N] [--gateways-per-host N]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$1"
shift
TASKS=2000
SLEEP_MS=20
PER_HOST=4
while [ $# -gt 0 ]; do
    case "$1" in
        --tasks) TASKS="$2"; shift 2 ;;
        --sleep-ms) SLEEP_MS="$2"; shift 2 ;;
        --gateways-per-host) PER_HOST="$2"; shift 2 ;;
        *) echo "hosts-curve: unknown argument $1" >&2; exit 2 ;;
    esac
done
HOSTS=(host1 host2 host3 host4)

WORK=$(mktemp -d /tmp/execnet-hosts-curve-XXXXXX)
PIDS=()
NAMESPACES=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- the hosts: namespaces named after this process, so two runs never meet ---------------------
tag="exq$$"
mode=netns
if [ "${EXECNET_MULTIHOST_MODE:-netns}" = netns ] && ip netns add "$tag-sw" 2>/dev/null; then
    NAMESPACES+=("$tag-sw")
    ip -n "$tag-sw" link add br0 type bridge
    ip -n "$tag-sw" link set br0 up
    index=1
    for host in broker "${HOSTS[@]}" client; do
        ns="$tag-$host"
        ip netns add "$ns"
        NAMESPACES+=("$ns")
        # Interface names are at most 15 characters: the index keeps them short and unique.
        ip link add "$tag-$index-h" type veth peer name "$tag-$index-s"
        ip link set "$tag-$index-h" netns "$ns"
        ip link set "$tag-$index-s" netns "$tag-sw"
        ip -n "$ns" addr add "10.78.0.$index/24" dev "$tag-$index-h"
        ip -n "$ns" link set "$tag-$index-h" up
        ip -n "$ns" link set lo up
        ip -n "$tag-sw" link set "$tag-$index-s" master br0
        ip -n "$tag-sw" link set "$tag-$index-s" up
        index=$((index + 1))
    done
    BROKER_ADDR=10.78.0.1
else
    mode=loopback
    BROKER_ADDR=127.0.0.2
fi
netns_prefix() { if [ "$mode" = netns ]; then echo "ip netns exec $tag-$1"; fi; }
echo "hosts-curve: hosts in $mode mode; broker at $BROKER_ADDR" >&2

for key in broker agent client; do
    "$BIN/execnet-broker" keygen --secret "$WORK/$key.key" --public "$WORK/$key.pub" > /dev/null
done
{ echo "agent $(cat "$WORK/agent.pub") agents"; echo "client $(cat "$WORK/client.pub") client"; } > "$WORK/authorized_keys"
PORT=$((20000 + $$ % 20000))
ENDPOINT="tcp://$BROKER_ADDR:$PORT"
CLIENT_KEYS=(--server-key "$WORK/broker.pub" --secret-key "$WORK/client.key")

$(netns_prefix broker) "$BIN/execnet-broker" serve --bind "$ENDPOINT" --secret-key "$WORK/broker.key" \
    --authorized-keys "$WORK/authorized_keys" --log-level warning > "$WORK/broker.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
for _ in $(seq 100); do grep -q "listening" "$WORK/broker.log" && break; sleep 0.1; done
grep -q "listening" "$WORK/broker.log" || { cat "$WORK/broker.log" >&2; echo "hosts-curve: the broker did not start" >&2; exit 1; }

for host in "${HOSTS[@]}"; do
    $(netns_prefix "$host") "$BIN/execnet-agent" --connect "$ENDPOINT" --name "$host" --slots "$PER_HOST" \
        --allow "$BIN/ExecnetBenchWorker" --server-key "$WORK/broker.pub" --secret-key "$WORK/agent.key" \
        --log-level warning > "$WORK/$host.log" 2>&1 &
    PIDS+=($!)
done
registered=0
for _ in $(seq 150); do
    status=$($(netns_prefix client) "$BIN/execnet-broker" status --connect "$ENDPOINT" "${CLIENT_KEYS[@]}" --json --timeout 1 2>/dev/null || true)
    count=0
    for host in "${HOSTS[@]}"; do case "$status" in *"\"$host\""*) count=$((count + 1)) ;; esac; done
    [ "$count" = "${#HOSTS[@]}" ] && { registered=1; break; }
    sleep 0.1
done
[ "$registered" = 1 ] || { cat "$WORK"/*.log >&2; echo "hosts-curve: the agents did not register" >&2; exit 1; }

hosts_list=$(IFS=,; echo "${HOSTS[*]}")
$(netns_prefix client) "$BIN/execnet-bench" runtime --figure hosts \
    --broker "$ENDPOINT//serverkey=$WORK/broker.pub//secretkey=$WORK/client.key" --worker "$BIN/ExecnetBenchWorker" \
    --hosts "$hosts_list" --gateways-per-host "$PER_HOST" --sleep-milliseconds "$SLEEP_MS" --tasks "$TASKS" \
    --broker-pid "$BROKER_PID" | sed 's/"impl": "swift"/"impl": "swift_broker_curve"/'
