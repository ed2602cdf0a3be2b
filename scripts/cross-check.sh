#!/usr/bin/env bash
# Cross-implementation check of the value serializer against Python execnet 2.1.2, in both
# directions. Creates a venv in .venv-crosscheck/ (ignored by git), builds the Swift helper
# (execnet-bench crosscheck) and runs scripts/cross_check.py. Exits non-zero on any mismatch.
#
#   scripts/cross-check.sh [--count N] [--seed S]      (environment: SCRATCH=.build-ser CONFIG=release)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-crosscheck
SCRATCH=${SCRATCH:-.build-ser}
CONFIG=${CONFIG:-release}

bash scripts/python-venv.sh

swift build -c "$CONFIG" --scratch-path "$SCRATCH" --product execnet-bench
BIN="$(swift build -c "$CONFIG" --scratch-path "$SCRATCH" --show-bin-path)/execnet-bench"

"$VENV/bin/python" scripts/cross_check.py --swift "$BIN" "$@"
