#!/usr/bin/env bash
# The quick start's first command: two throwaway clusters with AK between them.
# `bash build/demo.sh --once` prints the walkthrough and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
AK_TOOLS_BIN=$(bash build/setup.sh | tail -n 1)
export AK_TOOLS_BIN
# In the testbed sandbox (root: network, mount and PID namespaces of its own)
# the pods run in real containers on a real remote node; kwok otherwise.
exec .venv/bin/python -m tests.testbed.sandbox -- .venv/bin/python -m tests.testbed.demo "$@"
