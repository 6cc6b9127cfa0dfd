#!/usr/bin/env bash
# The Debian packages every build and test step needs, installed when missing (as root):
#   python3-venv, python3-dev, binutils   the virtualenv and the static binary (build/binary.sh)
#   skopeo, umoci                         the container image (build/image.sh)
#   iproute2, util-linux, iptables        the test sandbox's namespaces (tests/testbed/sandbox.py)
#   containerd, runc, containernetworking-plugins, busybox-static (the image needs a static
#   busybox), conntrack, ipset, file      the real nodes and their kube-router (build/node.sh)
#   systemd                               the systemd host of tests/cluster/test_real_systemd.py
# One list, so that no caller (build/setup.sh, the build scripts, CI) keeps its own.
# Quick when everything is there; prints nothing on stdout.
set -euo pipefail
log() { printf '[build/prereqs] %s\n' "$*" >&2; }

PACKAGES=(python3-venv python3-dev binutils skopeo umoci iproute2 util-linux iptables containerd runc
  containernetworking-plugins busybox-static conntrack ipset file systemd)

command -v dpkg-query >/dev/null || { log "not a Debian system: install the equivalents of ${PACKAGES[*]}"; exit 0; }
installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${PACKAGES[@]}" 2>/dev/null || true)"
need=()
for p in "${PACKAGES[@]}"; do
  [[ "$installed" == *" $p=installed "* ]] || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ -n "${AK_SANDBOX:-}" ]; then
  log "missing Debian packages ${need[*]}: run \`bash build/setup.sh\` outside the test sandbox (it reaches no package registry)"
  exit 3
fi
[ "$(id -u)" = 0 ] || { log "missing Debian packages: ${need[*]} (run as root, or install them)"; exit 1; }
log "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${need[@]}" >/dev/null
