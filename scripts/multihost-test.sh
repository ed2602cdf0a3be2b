#!/usr/bin/env bash
# Four hosts on one machine: a broker, two host agents and a client, each in a network namespace
# of its own joined by veth pairs to a bridge (10.77.0.0/24), CURVE on. Where namespaces cannot be
# made (no CAP_NET_ADMIN), the four run on 127.0.0.1-4 instead. Runs, from the client host: the
# seed's examples against the broker, the taskserver across both agents, a typed map over both hosts
# with a worker killed mid-way, and a check that killing
# one host's agent and workers delivers endmarkers and errors within the liveness bound while the
# other host keeps working. Uses the debug build (run `swift build --build-tests` first).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$(swift build --show-bin-path)
for exe in execnet-broker execnet-agent ExecnetTestWorker ExecnetTestClient taskserver; do
    [ -x "$BIN/$exe" ] || { echo "multihost: $BIN/$exe is missing; run 'swift build --build-tests' first"; exit 1; }
done

WORK=$(mktemp -d /tmp/execnet-multihost-XXXXXX)
PIDS=()
NAMESPACES=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
result() { if [ "$1" = 0 ]; then passed=$((passed + 1)); echo "PASS $2"; else failed=$((failed + 1)); echo "FAIL $2"; fi; }

# --- the hosts ---------------------------------------------------------------------------------
mode=netns
if [ "${EXECNET_MULTIHOST_MODE:-netns}" = netns ] && ip netns add exn-switch 2>/dev/null; then
    NAMESPACES+=(exn-switch)
    ip -n exn-switch link add br0 type bridge
    ip -n exn-switch link set br0 up
    index=1
    for host in broker agent1 agent2 client; do
        ns="exn-$host"
        ip netns add "$ns"
        NAMESPACES+=("$ns")
        ip link add "exn-$host-h" type veth peer name "exn-$host-s"
        ip link set "exn-$host-h" netns "$ns"
        ip link set "exn-$host-s" netns exn-switch
        ip -n "$ns" addr add "10.77.0.$index/24" dev "exn-$host-h"
        ip -n "$ns" link set "exn-$host-h" up
        ip -n "$ns" link set lo up
        ip -n exn-switch link set "exn-$host-s" master br0
        ip -n exn-switch link set "exn-$host-s" up
        index=$((index + 1))
    done
    BROKER_ADDR=10.77.0.1
else
    mode=loopback
    BROKER_ADDR=127.0.0.2
fi
# Runs a command on a host. `ip netns exec` execs the command, so `$!` of a background `on` is the
# command's own pid only when `on` is not a shell function: hence the array form below.
netns_prefix() { if [ "$mode" = netns ]; then echo "ip netns exec exn-$1"; fi; }
on() { local host=$1; shift; $(netns_prefix "$host") "$@"; }
echo "multihost: hosts in $mode mode; broker at $BROKER_ADDR"

# --- keys --------------------------------------------------------------------------------------
"$BIN/execnet-broker" keygen --secret "$WORK/broker.key" --public "$WORK/broker.pub" >/dev/null
"$BIN/execnet-broker" keygen --secret "$WORK/agent.key" --public "$WORK/agent.pub" >/dev/null
"$BIN/execnet-broker" keygen --secret "$WORK/client.key" --public "$WORK/client.pub" >/dev/null
{ echo "# agents and clients, with their roles"; echo "agent $(cat "$WORK/agent.pub") agents"; echo "client $(cat "$WORK/client.pub") client"; } > "$WORK/authorized_keys"
ENDPOINT="tcp://$BROKER_ADDR:5555"
CLIENT_KEYS=(--server-key "$WORK/broker.pub" --secret-key "$WORK/client.key")

# --- broker and agents -------------------------------------------------------------------------
$(netns_prefix broker) "$BIN/execnet-broker" serve --bind "tcp://$BROKER_ADDR:5555" --secret-key "$WORK/broker.key" \
    --authorized-keys "$WORK/authorized_keys" --heartbeat-interval 0.3 --liveness 3 --log-level warning \
    > "$WORK/broker.log" 2>&1 &
PIDS+=($!)
disown $!
for _ in $(seq 100); do grep -q "listening" "$WORK/broker.log" && break; sleep 0.1; done
grep -q "listening" "$WORK/broker.log" || { cat "$WORK/broker.log"; echo "multihost: the broker did not start"; exit 1; }

for agent in 1 2; do
    $(netns_prefix "agent$agent") "$BIN/execnet-agent" --connect "$ENDPOINT" --name "host$agent" --slots 8 \
        --allow "$BIN/ExecnetTestWorker" --allow "$BIN/taskserver" \
        --server-key "$WORK/broker.pub" --secret-key "$WORK/agent.key" --log-level warning \
        > "$WORK/agent$agent.log" 2>&1 &
    PIDS+=($!)
    disown $!
    eval "AGENT${agent}_PID=$!"
done
for _ in $(seq 100); do
    hosts=$(on client "$BIN/execnet-broker" status --connect "$ENDPOINT" "${CLIENT_KEYS[@]}" --json --timeout 1 2>/dev/null || true)
    case "$hosts" in *host1*host2*|*host2*host1*) break ;; esac
    sleep 0.1
done
case "$hosts" in
    *host1*host2*|*host2*host1*) result 0 "both agents registered through CURVE" ;;
    *) result 1 "both agents registered through CURVE"; cat "$WORK"/*.log; exit 1 ;;
esac
on client "$BIN/execnet-broker" status --connect "$ENDPOINT" "${CLIENT_KEYS[@]}"

SPEC="broker=$ENDPOINT//serverkey=$WORK/broker.pub//secretkey=$WORK/client.key"

# --- the seed's examples, from the client host -------------------------------------------------
set +e
on client env EXECNET_TEST_EXTERNAL_BROKER="$SPEC" swift test --skip-build --filter "seedExample" > "$WORK/seed.log" 2>&1
status=$?
set -e
grep -E "Test run with|✘" "$WORK/seed.log" | tail -5
result $status "the seed's examples against the broker across hosts"

# --- roles: the agent key is not a client --------------------------------------------------------
set +e
output=$(on client "$BIN/taskserver" --spec "broker=$ENDPOINT//serverkey=$WORK/broker.pub//secretkey=$WORK/agent.key//worker=$BIN/taskserver" \
    --tasks 1 --quiet 2>&1)
status=$?
set -e
case "$output" in *"may not act as a client"*) [ "$status" != 0 ] && status=0 || status=1 ;; *) echo "$output" | tail -3; status=1 ;; esac
result $status "the broker refuses the agents' key as a client"

# --- the taskserver across both agents ---------------------------------------------------------
set +e
output=$(on client "$BIN/taskserver" --spec "$SPEC//worker=$BIN/taskserver" --tasks 40 --max-sleep 0.05 --quiet 2>&1)
status=$?
set -e
echo "$output" | tail -1
case "$output" in *"results: 40 of 40"*complete*) ;; *) status=1 ;; esac
result $status "the taskserver across hosts returns every result once"

# --- a typed map across both hosts, a worker killed mid-way ------------------------------------
set +e
on client "$BIN/ExecnetTestClient" map-check "$SPEC//host=host1//worker=$BIN/ExecnetTestWorker" \
    "$SPEC//host=host2//worker=$BIN/ExecnetTestWorker" 2>&1 | grep -v "^\[" | head -40
status=${PIPESTATUS[0]}
set -e
result $status "a typed map over both hosts loses nothing when a worker is killed mid-way, and replaces it"

# --- killing one host --------------------------------------------------------------------------
set +e
on client "$BIN/ExecnetTestClient" kill-host-check "$SPEC//host=host1//worker=$BIN/ExecnetTestWorker" \
    "$SPEC//host=host2//worker=$BIN/ExecnetTestWorker" "$AGENT1_PID" 2>&1 | grep -v "^\[" | head -60
status=$?
set -e
result $status "killing host1's agent and workers ends its channels within the liveness bound; host2 keeps working"

echo "multihost ($mode): $passed passed, $failed failed"
[ "$failed" = 0 ]
