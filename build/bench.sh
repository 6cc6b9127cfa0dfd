#!/usr/bin/env bash
# The benchmark (issue: added latency, throughput, footprint, restart, cost).
#   bash build/bench.sh                       # 100 and 1,000 pods, 60 s idle window
#   bash build/bench.sh --pods 10000          # the large run
set -euo pipefail
cd "$(dirname "$0")/.."
AK_TOOLS_BIN=$(bash build/setup.sh | tail -n 1)
export AK_TOOLS_BIN
exec .venv/bin/python -m tests.testbed.bench "$@"
