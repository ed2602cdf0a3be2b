#!/usr/bin/env bash
# Makes docs/img/dashboard.png, the README's picture of the broker dashboard, the way the browser
# test sees it: DashboardBrowserTests runs a broker, two agents and a client, drives Debian's
# headless chromium through selenium (scripts/dashboard_browser.py), and with
# EXECNET_DASHBOARD_SCREENSHOT set it adds a few gateways, traffic and a failing worker, then saves
# the page. Needs `apt-get install chromium chromium-driver` and scripts/python-venv.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-venv.sh >/dev/null
mkdir -p docs/img
EXECNET_DASHBOARD_SCREENSHOT="$PWD/docs/img/dashboard.png" \
    swift test --filter 'DashboardBrowserTests'
echo "dashboard-screenshot: wrote docs/img/dashboard.png"
