#!/usr/bin/env bash
# The test command: every build the tests need, lint, type-check, then every test
# (unit, real-cluster, real-node). The tests run in a network + mount + PID
# namespace of their own, where real kubelets can have non-loopback addresses
# and nothing reaches the machine, nor any package registry: so everything they
# run is built here first, outside (each step cached by its inputs).
# Extra arguments go to pytest, e.g. `bash build/test.sh -k harness`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
AK_TOOLS_BIN=$(bash build/setup.sh | tail -n 1)
export AK_TOOLS_BIN
# The three deliveries the tests run: the static binary, the image, helm for the chart.
bash build/binary.sh >/dev/null
bash build/image.sh >/dev/null
bash build/helm.sh >/dev/null
echo "[test] every build ready in $(( $(date +%s) - start ))s" >&2
echo "[test] ruff" >&2
.venv/bin/ruff check ak tests
.venv/bin/ruff format --check ak tests
echo "[test] mypy --strict" >&2
.venv/bin/mypy
echo "[test] import contracts (pyproject.toml [tool.importlinter])" >&2
.venv/bin/lint-imports
sandboxed_pytest() { .venv/bin/python -m tests.testbed.sandbox -- .venv/bin/pytest "$@"; }
if [ "$#" -gt 0 ]; then
  echo "[test] pytest $* (in the testbed sandbox: tests/testbed/sandbox.py)" >&2
  exec .venv/bin/python -m tests.testbed.sandbox -- .venv/bin/pytest "$@"
fi
# Every test, in two shards run side by side, each in a sandbox of its own (its
# own clusters, addresses and real nodes: nothing is shared but the CPU). Much
# of a cluster test's time is spent waiting (for clusters, outages, slow
# readers), not computing, so two shards on two cores take less than one. One
# shard is the real-node tests plus the outages (five minutes of waiting); the other
# is everything else, unit tests included.
logs=$(mktemp -d /tmp/ak-test-XXXXXX)
second=(tests/cluster/test_real_*.py tests/cluster/test_outages.py)
ignore=()
for f in "${second[@]}"; do ignore+=("--ignore=$f"); done
echo "[test] pytest in two sandboxes (tests/testbed/sandbox.py): the real-node tests (log: $logs/second.log) and the rest (below)" >&2
sandboxed_pytest "${second[@]}" >"$logs/second.log" 2>&1 &
second_pid=$!
first=0
sandboxed_pytest tests "${ignore[@]}" || first=$?
second_status=0
wait "$second_pid" || second_status=$?
echo "[test] the second shard (exit $second_status):" >&2
cat "$logs/second.log"
echo "[test] shards: first exit $first, second exit $second_status; $(( $(date +%s) - start ))s in all" >&2
[ "$first" = 0 ] && [ "$second_status" = 0 ]
