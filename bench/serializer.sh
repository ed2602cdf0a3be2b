#!/usr/bin/env bash
# Serializer benchmark: Swift (release build) and Python execnet 2.1.2 on the same workloads,
# printed as one table. Uses the venv of scripts/cross-check.sh (.venv-crosscheck/, ignored).
#
#   bench/serializer.sh [--quick] [--reps N]      (environment: SCRATCH=.build-ser)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-crosscheck
SCRATCH=${SCRATCH:-.build-ser}

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "execnet==2.1.2"

swift build -c release --scratch-path "$SCRATCH" --product execnet-bench
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/execnet-bench"

"$BIN" serializer --python "$VENV/bin/python" --python-script bench/serializer_bench.py "$@"
