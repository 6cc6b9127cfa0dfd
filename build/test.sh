#!/usr/bin/env bash
# The test command: lint, type-check, then every test (unit, real-cluster, real-node).
# The tests run in a network + mount + PID namespace of their own, where real
# kubelets can have non-loopback addresses and nothing reaches the machine.
# Extra arguments go to pytest, e.g. `bash build/test.sh -k harness`.
set -euo pipefail
cd "$(dirname "$0")/.."
AK_TOOLS_BIN=$(bash build/setup.sh | tail -n 1)
export AK_TOOLS_BIN
echo "[test] ruff" >&2
.venv/bin/ruff check ak tests
.venv/bin/ruff format --check ak tests
echo "[test] mypy --strict" >&2
.venv/bin/mypy
echo "[test] import contracts (pyproject.toml [tool.importlinter])" >&2
.venv/bin/lint-imports
echo "[test] pytest (in the testbed sandbox: ak/testbed/sandbox.py)" >&2
exec .venv/bin/python -m ak.testbed.sandbox -- .venv/bin/pytest "$@"
