#!/usr/bin/env bash
# The quick start's first command: two throwaway clusters with AK between them.
# `bash build/demo.sh --once` prints the walkthrough and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
AK_TOOLS_BIN=$(bash build/setup.sh | tail -n 1)
export AK_TOOLS_BIN
exec .venv/bin/python -m ak.testbed.demo "$@"
