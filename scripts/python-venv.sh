#!/usr/bin/env bash
# The Python environment of the Python interop checks: a venv in .venv-crosscheck/ (ignored by git)
# with execnet 2.1.2 (the serializer the port is byte-compatible with) and pyzmq (the Python peers
# written from docs/PROTOCOL.md, Tests/PythonPeers, that the integration tests run), and selenium
# (the dashboard's browser test and scripts/dashboard-screenshot.sh drive Debian's chromium). Used by
# scripts/cross-check.sh, .ci/run and the README's set-up line; does nothing when it is complete.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-crosscheck
PACKAGES=("execnet==2.1.2" "pyzmq==27.3.0" "selenium==4.50.0")

if "$VENV/bin/python" -c 'import sys, execnet, zmq, selenium; sys.exit(execnet.__version__ != "2.1.2" or zmq.__version__ != "27.3.0" or selenium.__version__ != "4.50.0")' 2>/dev/null; then
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
"$VENV/bin/python" -c 'import execnet, zmq; print("python-venv: execnet", execnet.__version__, "pyzmq", zmq.__version__, "libzmq", zmq.zmq_version())'
