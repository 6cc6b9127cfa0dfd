#!/usr/bin/env bash
# Everything a fresh machine needs for the tests and the demo; quick when done before.
#   the Debian packages (build/prereqs.sh, as root),
#   a virtualenv with AK and its test tools in .venv,
#   the Kubernetes binaries built from Go modules (build/tools.sh, cached),
#   virtual-kubelet's provider e2e suite as a test binary (build/vk-e2e.sh, cached),
#   and, as root, the real-node parts (build/node.sh: kubelet, containerd, images) and
#   kube-router, their NetworkPolicy enforcement (build/kube-router.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash build/prereqs.sh
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)" >&2
  $PY -m venv .venv
fi
stamp=.venv/.ak-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing AK and its test tools into .venv" >&2
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

AK_TOOLS_BIN=$(bash build/tools.sh | tail -n 1)
# tests/cluster/test_vk_e2e.py runs it; built here so a clean machine (.ci/run)
# has it before the tests, which then only find it in the cache.
bash build/vk-e2e.sh >/dev/null
# tests/cluster/test_real_metrics.py runs it (kubectl top, HPA on an AK node).
bash build/metrics-server.sh >/dev/null
# tests/cluster/test_real_local_path.py and test_real_storage.py run it (dynamic volumes on the remote).
bash build/local-path.sh >/dev/null
# The real-node parts (kubelet, containerd & co., test images); they need root.
if [ "$(id -u)" = 0 ]; then
  AK_NODE_TOOLS=$(bash build/node.sh | tail -n 1)
  echo "[setup] real-node parts: $AK_NODE_TOOLS" >&2
  AK_KUBE_ROUTER=$(bash build/kube-router.sh | tail -n 1)
  echo "[setup] kube-router: $AK_KUBE_ROUTER" >&2
fi
echo "$AK_TOOLS_BIN"
