#!/usr/bin/env bash
# The parts of a real testbed node (tests/testbed/realnode.py), cached like build/tools.sh:
#   Debian's containerd, runc, CNI plugins, busybox-static, iptables, ipset (for kube-router,
#   build/kube-router.sh) and systemd (for the systemd host, tests/testbed/systemd_host.py),
#   installed as root when missing;
#   kubelet and kube-proxy from the pinned k8s.io/kubernetes wrapper module (build/go/k8s),
#   CoreDNS from build/go/coredns;
#   the pause program (build/go/pause) and the image archive (tests/testbed/images.py):
#   pause, a busybox shell and a controller image with the static kubectl.
# Prints the directory holding kubelet and images.tar as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
K8S_VERSION=${K8S_VERSION:-v1.36.3}
cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
log() { printf '[build/node] %s\n' "$*" >&2; }

. "$here/lib.sh"
bash "$here/prereqs.sh"

tools_bin=$(bash "$here/tools.sh" | tail -n 1)
out="$cache_root/node-k8s-$K8S_VERSION"
mkdir -p "$out"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"

if [ ! -x "$out/kubelet" ]; then
  sandbox_guard kubelet
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  log "building kubelet $K8S_VERSION (first build takes about 10 minutes)"
  t=$(date +%s)
  (cd "$here/go/k8s" && go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
     -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
     -X k8s.io/component-base/version.gitTreeState=clean" -o "$out/kubelet.tmp" k8s.io/kubernetes/cmd/kubelet)
  mv "$out/kubelet.tmp" "$out/kubelet"
  log "  kubelet done in $(( $(date +%s) - t ))s"
fi

# kube-proxy and CoreDNS give the remote real node ClusterIP Services and cluster DNS
# (tests/cluster/test_real_east_west.py): kube-proxy from the same wrapper module,
# CoreDNS from its own (build/go/coredns: only the plugins the tests use).
if [ ! -x "$out/kube-proxy" ]; then
  sandbox_guard kube-proxy
  log "building kube-proxy $K8S_VERSION"
  (cd "$here/go/k8s" && go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION" \
     -o "$out/kube-proxy.tmp" k8s.io/kubernetes/cmd/kube-proxy)
  mv "$out/kube-proxy.tmp" "$out/kube-proxy"
fi
dns_key=$(cat "$here/go/coredns/go.mod" "$here/go/coredns/main.go" | sha256sum | cut -c1-16)
if [ ! -x "$out/coredns" ] || [ "$(cat "$out/coredns.key" 2>/dev/null)" != "$dns_key" ]; then
  sandbox_guard CoreDNS
  log "building CoreDNS (about a minute)"
  (cd "$here/go/coredns" && go build -ldflags "-s -w" -o "$out/coredns.tmp" .)
  mv "$out/coredns.tmp" "$out/coredns"
  echo "$dns_key" >"$out/coredns.key"
fi

# The images are cheap: rebuilt whenever an input changes.
key=$(cat "$here/go/pause/main.go" "$here/go/webhook/main.go" "$repo/tests/testbed/images.py" /bin/busybox "$tools_bin/kubectl" | sha256sum | cut -c1-16)
if [ ! -f "$out/images.tar" ] || [ "$(cat "$out/images.key" 2>/dev/null)" != "$key" ]; then
  log "building the pause program and the test images"
  (cd "$here/go/pause" && go build -ldflags "-s -w" -o "$out/pause" .)
  (cd "$here/go/webhook" && go build -ldflags "-s -w" -o "$out/webhook" .)
  python3 "$repo/tests/testbed/images.py" --pause "$out/pause" --busybox /bin/busybox \
    --kubectl "$tools_bin/kubectl" --webhook "$out/webhook" --out "$out/images.tar" >/dev/null
  echo "$key" >"$out/images.key"
fi
echo "$out"
