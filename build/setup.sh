#!/usr/bin/env bash
# Everything a fresh machine needs for the tests and the demo; quick when done before.
#   Debian packages (etcd-server), a virtualenv with AK and its test tools in .venv,
#   and the Kubernetes binaries built from Go modules (build/tools.sh, cached).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: please install Debian packages: ${need_apt[*]}" >&2; exit 1; fi
  echo "[setup] apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need_apt[@]}" >/dev/null
  # Debian starts a system etcd on the default ports; the harness runs its own.
  systemctl disable --now etcd >/dev/null 2>&1 || pkill -x etcd || true
fi

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
echo "$AK_TOOLS_BIN"
