#!/usr/bin/env bash
# Bounded libFuzzer run of the serializer's decoders and the frame parsers (Fuzz/ExecnetFuzz).
# Builds the fuzz target with -sanitize=fuzzer,address in its own scratch directory (only with
# EXECNET_FUZZ=1 does the package have that target), then fuzzes from the committed corpus
# Fuzz/corpus for a bounded time. New inputs go to a temporary directory, not the corpus.
# Exits non-zero on a crash, a sanitizer report, or an input that takes over 10 s (a slow decode).
#
#   scripts/fuzz.sh [seconds, default 60]      (environment: SCRATCH=.build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN=${1:-60}
SCRATCH=${SCRATCH:-.build-fuzz}
FLAGS=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -gnone)

EXECNET_FUZZ=1 swift build --scratch-path "$SCRATCH" --product execnet-fuzz "${FLAGS[@]}"
BIN="$(EXECNET_FUZZ=1 swift build --scratch-path "$SCRATCH" --show-bin-path "${FLAGS[@]}")/execnet-fuzz"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# A failing input is kept where a reader finds it (the work directory goes at exit).
ARTIFACTS="$SCRATCH/fuzz-artifacts"
mkdir -p "$ARTIFACTS"
# -timeout: one input may take at most 10 s; -max_len: room for the nested-frozenset seed.
# libFuzzer's progress lines go to a log; its final figures, or the end of the log on failure, are shown.
status=0
"$BIN" "$WORK" Fuzz/corpus -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" > "$WORK/fuzz.log" 2>&1 || status=$?
if [ "$status" != 0 ]; then
    tail -n 60 "$WORK/fuzz.log"
    echo "fuzz: failed ($status); the input is in $ARTIFACTS" >&2
    exit "$status"
fi
grep -E '^(stat::|Done )' "$WORK/fuzz.log" || tail -n 5 "$WORK/fuzz.log"
