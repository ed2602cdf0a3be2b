#!/usr/bin/env bash
# The CI check of deploy/: what this machine can check without a container engine or a cluster.
#
#   scripts/check-deploy.sh [--no-binaries] [--bin-dir DIR]
#
#   1. every *.yaml / *.yml under deploy/ parses (PyYAML, all documents)
#   2. deploy/compose.yaml validates with `docker compose config -q` (or docker-compose);
#      skipped when no compose CLI is installed
#   3. the systemd units pass `systemd-analyze verify` (and `security --offline` stays at most
#      5.0); the env file holds only variables the binaries read; skipped without systemd-analyze
#   4. each kustomization renders with `kubectl kustomize` (offline), the rendered objects
#      validate with kubernetes-validate (offline schemas, installed from PyPI when missing) and,
#      where a cluster answers, `kubectl apply --dry-run=client`
#   5. the built binaries: every execnet-* binary the files name exists in BIN_DIR, and every
#      subcommand and --flag the files pass to execnet-broker / execnet-agent appears in that
#      command's --help. BIN_DIR: --bin-dir, else $BIN_DIR, else .build/release or .build/debug
#      (whichever exists). --no-binaries skips this step.
#   6. the Grafana dashboard (deploy/grafana/execnet-dashboard.json): every metric name its
#      queries use is in a live /metrics scrape of the built execnet-broker and execnet-agent
#      after a few gateways ran through them (execnet-bench and ExecnetBenchWorker from BIN_DIR);
#      skipped with --no-binaries
#   Also: make-keys.sh runs (against the built execnet-broker, or a stand-in keygen with
#   --no-binaries), and the deploy files use only EXECNET_* variables that exist.
#
# Prints PASS / FAIL / SKIP lines and ends with "deploy checks: N passed, M skipped" (and
# ", F failed"); exits 1 if any check failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

no_binaries=0
bin_dir=${BIN_DIR:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --no-binaries) no_binaries=1 ;;
        --bin-dir) shift; bin_dir=${1:?--bin-dir needs a directory} ;;
        --bin-dir=*) bin_dir=${1#--bin-dir=} ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-deploy: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

LOG=$(mktemp)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" "$LOG"' EXIT

pass() { echo "PASS  $*" | tee -a "$LOG"; }
fail() { echo "FAIL  $*" | tee -a "$LOG"; }
skip() { echo "SKIP  $*" | tee -a "$LOG"; }
# Runs a helper that prints its own PASS/FAIL/SKIP lines; a nonzero exit without a FAIL line
# still counts as a failure.
run_helper() {
    local name=$1
    shift
    local output rc
    output=$("$@" 2>&1)
    rc=$?
    [ -n "$output" ] && echo "$output" | tee -a "$LOG"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL' <<<"$output"; then
        fail "$name: exited $rc"
    fi
}
PY=python3
section() { echo; echo "== $*"; }

# --------------------------------------------------------------------------------------------
section "1. YAML files parse"
if ! $PY -c 'import yaml' 2>/dev/null; then
    echo "PyYAML missing: pip install pyyaml"
    $PY -m pip install -q pyyaml >/dev/null 2>&1 || true
fi
if $PY -c 'import yaml' 2>/dev/null; then
    run_helper yaml $PY scripts/check_deploy.py yaml
else
    fail "yaml: PyYAML is not installed and pip could not install it"
fi

# --------------------------------------------------------------------------------------------
section "2. compose file"
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
    version=$("${compose[@]}" version 2>/dev/null | head -n1)
    if out=$("${compose[@]}" -f deploy/compose.yaml config -q 2>&1); then
        pass "compose: ${compose[*]} config -q accepts deploy/compose.yaml ($version)"
    else
        fail "compose: ${compose[*]} config -q: $out"
    fi
else
    skip "compose: no compose CLI here (neither 'docker compose' nor 'docker-compose')"
fi

# --------------------------------------------------------------------------------------------
section "3. systemd units"
run_helper env-file $PY scripts/check_deploy.py env-file deploy/systemd/execnet.env.example

# The binaries the units start: the built ones when we have them, else stand-ins (verify checks
# that ExecStart= names an executable; step 5 checks the real binaries).
units_bin=""
if [ $no_binaries -eq 0 ] && [ -n "$bin_dir" ] && [ -x "$bin_dir/execnet-broker" ] && [ -x "$bin_dir/execnet-agent" ]; then
    units_bin=$(cd "$bin_dir" && pwd)
    units_note="ExecStart= pointed at $units_bin"
elif [ $no_binaries -eq 0 ] && [ -z "$bin_dir" ] && [ -x .build/release/execnet-broker ] && [ -x .build/release/execnet-agent ]; then
    units_bin=$ROOT/.build/release
    units_note="ExecStart= pointed at .build/release"
elif [ $no_binaries -eq 0 ] && [ -z "$bin_dir" ] && [ -x .build/debug/execnet-broker ] && [ -x .build/debug/execnet-agent ]; then
    units_bin=$ROOT/.build/debug
    units_note="ExecStart= pointed at .build/debug"
else
    units_bin=$WORK/stub-bin
    mkdir -p "$units_bin"
    for b in execnet-broker execnet-agent; do printf '#!/bin/sh\nexit 0\n' >"$units_bin/$b"; chmod +x "$units_bin/$b"; done
    units_note="ExecStart= binaries replaced by stand-ins (no built binaries)"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
    units=$WORK/units
    mkdir -p "$units/execnet-agent.service.d"
    for unit in deploy/systemd/*.service; do
        sed "s#/usr/local/bin/#$units_bin/#g" "$unit" >"$units/$(basename "$unit")"
    done
    # The drop-in example, with the user's worker path replaced by an executable that exists.
    sed -e "s#/usr/local/bin/#$units_bin/#g" -e "s#/usr/local/libexec/execnet/my-worker#/bin/true#g" \
        deploy/systemd/execnet-agent.service.d/worker.conf.example >"$units/execnet-agent.service.d/worker.conf"
    # verify prints warnings (unknown keys, say) but exits 0 on them: any output fails the check.
    if out=$(cd / && SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify execnet-broker.service execnet-agent.service 2>&1) && [ -z "$out" ]; then
        pass "systemd: systemd-analyze verify: execnet-broker.service, execnet-agent.service + worker.conf drop-in ($units_note)"
    else
        fail "systemd: systemd-analyze verify: ${out:-nonzero exit}"
    fi
    for unit in execnet-broker execnet-agent; do
        if out=$(cd / && systemd-analyze security --offline=true --threshold=50 --no-pager "$units/$unit.service" 2>&1); then
            level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' <<<"$out" | sed 's/.*: //')
            pass "systemd: $unit.service exposure ${level:-?} (systemd-analyze security --offline, at most 5.0)"
        else
            level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' <<<"$out" | sed 's/.*: //')
            if [ -n "$level" ]; then
                fail "systemd: $unit.service exposure $level is above 5.0"
            else
                skip "systemd: security --offline not available here: $(head -n1 <<<"$out")"
            fi
        fi
    done
else
    skip "systemd: systemd-analyze not installed"
fi

# --------------------------------------------------------------------------------------------
section "4. Kubernetes manifests"
kustomizations=(deploy/kubernetes deploy/kubernetes/daemonset deploy/kubernetes/own-worker)
rendered=()
if command -v kubectl >/dev/null 2>&1; then
    for k in "${kustomizations[@]}"; do
        file=$WORK/$(echo "$k" | tr '/' '_').yaml
        if out=$(kubectl kustomize "$k" 2>&1 >"$file"); then
            kinds=$(grep '^kind:' "$file" | sed 's/kind: //' | paste -sd, -)
            pass "kubernetes: kubectl kustomize $k renders ($kinds)"
            rendered+=("$file")
        else
            fail "kubernetes: kubectl kustomize $k: $out"
        fi
    done
    # Client-side dry runs still ask a server for its API groups: only with a cluster.
    if kubectl version --request-timeout=3s >/dev/null 2>&1 && [ ${#rendered[@]} -gt 0 ]; then
        if out=$(kubectl apply --dry-run=client -f "${rendered[0]}" 2>&1); then
            pass "kubernetes: kubectl apply --dry-run=client accepts ${kustomizations[0]}"
        else
            fail "kubernetes: kubectl apply --dry-run=client: $out"
        fi
    else
        skip "kubernetes: kubectl apply --dry-run=client needs a reachable API server; none here"
    fi
else
    skip "kubernetes: kubectl not installed (kustomize rendering not checked)"
fi
if [ ${#rendered[@]} -gt 0 ]; then
    if ! command -v kubernetes-validate >/dev/null 2>&1; then
        echo "kubernetes-validate missing: pip install kubernetes-validate"
        $PY -m pip install -q kubernetes-validate >/dev/null 2>&1 || true
    fi
    if command -v kubernetes-validate >/dev/null 2>&1; then
        for file in "${rendered[@]}"; do
            name=$(basename "$file" .yaml | tr '_' '/')
            if out=$(kubernetes-validate --strict --quiet "$file" 2>&1); then
                pass "kubernetes: kubernetes-validate --strict accepts $name (kubernetes-validate $(kubernetes-validate --version 2>/dev/null | awk '{print $NF}'))"
            else
                fail "kubernetes: kubernetes-validate --strict $name: $out"
            fi
        done
    else
        skip "kubernetes: kubernetes-validate not installed and pip could not install it"
    fi
fi

# --------------------------------------------------------------------------------------------
section "5. binaries: commands, flags and paths the deploy files use"
run_helper env-names $PY scripts/check_deploy.py env-names

if [ $no_binaries -eq 1 ]; then
    calls=$($PY scripts/check_deploy.py invocations | wc -l)
    skip "binaries: --no-binaries given; $calls execnet-broker/execnet-agent calls in the deploy files not checked against --help"
    keygen_bin=""
else
    if [ -z "$bin_dir" ]; then
        if [ -x .build/release/execnet-broker ] || [ ! -d .build/debug ]; then
            bin_dir=.build/release
        else
            bin_dir=.build/debug
        fi
    fi
    if [ ! -x "$bin_dir/execnet-broker" ] || [ ! -x "$bin_dir/execnet-agent" ]; then
        echo "The broker and agent binaries are not in $bin_dir. Build them first"
        echo "(swift build -c release), point BIN_DIR or --bin-dir at them, or pass --no-binaries."
    fi
    run_helper binaries $PY scripts/check_deploy.py binaries "$bin_dir"
    keygen_bin=""
    [ -x "$bin_dir/execnet-broker" ] && keygen_bin=$(cd "$bin_dir" && pwd)/execnet-broker
fi

# make-keys.sh: a full run, a second run that keeps the keys, and a name added later.
section "make-keys.sh"
if [ -z "$keygen_bin" ]; then
    # A stand-in for `execnet-broker keygen --secret FILE --public FILE` (40 Z85 characters each).
    keygen_bin=$WORK/fake-broker
    cat >"$keygen_bin" <<'EOF'
#!/bin/sh
[ "$1" = keygen ] || exit 2
shift
while [ $# -gt 0 ]; do
    case "$1" in --secret) secret=$2; shift ;; --public) public=$2; shift ;; esac
    shift
done
[ ! -e "$secret" ] && [ ! -e "$public" ] || { echo "refusing to overwrite" >&2; exit 1; }
key() { LC_ALL=C tr -dc 'A-Za-z0-9.:+=^!/*?&<>()[]{}@%$#-' </dev/urandom | head -c "$1"; }
( umask 077; key 40 >"$secret"; echo >>"$secret" )
# Z85 has '#' in its alphabet: the public keys start with one, which must not pass for a comment.
{ printf '#'; key 39; echo; } >"$public"
EOF
    chmod +x "$keygen_bin"
    keys_note="with a stand-in keygen"
else
    keys_note="with $keygen_bin keygen"
fi
keys=$WORK/keys
if ! out=$(EXECNET_BROKER_BIN=$keygen_bin sh deploy/make-keys.sh "$keys" 2>&1); then
    fail "make-keys: first run failed: $out"
else
    problems=""
    for name in broker agent client; do
        [ -s "$keys/$name.key" ] && [ -s "$keys/$name.pub" ] || problems+=" $name pair missing;"
        mode=$(stat -c %a "$keys/$name.key" 2>/dev/null)
        [ "$mode" = 600 ] || problems+=" $name.key mode $mode;"
    done
    [ "$(awk 'length($2) == 40' "$keys/authorized_keys" | wc -l)" = 3 ] || problems+=" authorized_keys does not hold 3 keys;"
    { grep -q '^status .* broker$' "$keys/authorized_keys" && grep -q '^agent .* agent$' "$keys/authorized_keys" &&
        grep -q '^client .* client$' "$keys/authorized_keys"; } || problems+=" authorized_keys roles wrong;"
    before=$(cat "$keys"/*.key | sha256sum)
    EXECNET_BROKER_BIN=$keygen_bin sh deploy/make-keys.sh "$keys" >/dev/null 2>&1 || problems+=" second run failed;"
    [ "$(cat "$keys"/*.key | sha256sum)" = "$before" ] || problems+=" second run changed keys;"
    EXECNET_BROKER_BIN=$keygen_bin sh deploy/make-keys.sh "$keys" client2 >/dev/null 2>&1 || problems+=" adding client2 failed;"
    [ "$(awk 'length($2) == 40' "$keys/authorized_keys" | wc -l)" = 4 ] || problems+=" client2 not authorized;"
    if [ -z "$problems" ]; then
        pass "make-keys: key pairs (0600), authorized_keys with roles, idempotent rerun, added client ($keys_note)"
    else
        fail "make-keys:$problems ($keys_note)"
    fi
fi

# --------------------------------------------------------------------------------------------
section "6. Grafana dashboard against a live scrape"
if [ $no_binaries -eq 1 ]; then
    skip "grafana: --no-binaries given; the dashboard's metric names were not checked against a scrape"
else
    run_helper grafana $PY scripts/check_deploy.py grafana "$bin_dir"
fi

# --------------------------------------------------------------------------------------------
passed=$(grep -c '^PASS' "$LOG")
failed=$(grep -c '^FAIL' "$LOG")
skipped=$(grep -c '^SKIP' "$LOG")
echo
if [ "$failed" -gt 0 ]; then
    echo "deploy checks: $passed passed, $skipped skipped, $failed failed"
    exit 1
fi
echo "deploy checks: $passed passed, $skipped skipped"
