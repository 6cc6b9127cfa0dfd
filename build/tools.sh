#!/usr/bin/env bash
# Build the real Kubernetes parts the tests, benchmark and demo run against:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the
# pinned k8s.io/kubernetes module, etcd from go.etcd.io/etcd/server/v3 (the
# version Kubernetes pins; Debian's 3.4 lacks RequestWatchProgress, which
# client-go 1.36's streaming lists need), and kwok from sigs.k8s.io/kwok, all
# through the Go module proxy (never release downloads).
#
# Output: $AK_TOOLS_DIR (default ~/.cache/ak-tools/<versions>/bin); a second run
# with the same versions finds the stamp file and returns in milliseconds.
# Prints the bin directory as its last line.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
out=${AK_TOOLS_DIR:-$cache_root/$key/bin}
stamp="$out/.complete"

log() { printf '[build/tools] %s\n' "$*" >&2; }

if [ -f "$stamp" ]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { log "Go is required to build the control plane (none on PATH)"; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
. "$here/lib.sh"
sandbox_guard "the control plane (kube-apiserver, etcd, kwok & co.)"
mkdir -p "$out"
start=$(date +%s)

# --- Kubernetes: a wrapper module pinning every staging module ---------------
mod="$here/go/k8s"
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
staging_v="v0.${K8S_VERSION#v1.}"
if ! grep -q "k8s.io/kubernetes $K8S_VERSION" "$mod/go.mod" 2>/dev/null; then
  log "generating wrapper module for k8s.io/kubernetes $K8S_VERSION"
  upstream=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  mkdir -p "$mod"
  {
    echo "module local.invalid/akbuild/k8s"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$upstream" | sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging_v"'#p'
    echo ")"
    echo
    echo "tool ("
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do echo "	k8s.io/kubernetes/cmd/$c"; done
    echo ")"
  } >"$mod/go.mod"
  rm -f "$mod/go.sum"
  (cd "$mod" && go mod tidy)
fi
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  log "building $c $K8S_VERSION (first build takes many minutes)"
  t=$(date +%s)
  (cd "$mod" && go build -ldflags "$ldflags" -o "$out/$c" "k8s.io/kubernetes/cmd/$c")
  log "  $c done in $(( $(date +%s) - t ))s"
done

# --- etcd: its own wrapper module, so MVS doesn't mix in Kubernetes' newer deps ---
log "building etcd $ETCD_VERSION"
emod="$here/go/etcd"
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$emod/go.mod" || {
  log "etcd wrapper module pins another version; edit $emod/go.mod"; exit 1; }
(cd "$emod" && go build -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)

# --- kwok: no replace directives upstream, so `go install pkg@version` works ---
log "building kwok $KWOK_VERSION"
GOBIN="$out" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

echo "$K8S_VERSION $ETCD_VERSION $KWOK_VERSION built in $(( $(date +%s) - start ))s" >"$stamp"
log "all built in $(( $(date +%s) - start ))s: $out"
echo "$out"
