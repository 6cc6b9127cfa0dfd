#!/usr/bin/env bash
# Build kube-router (github.com/cloudnativelabs/kube-router/v2) through the Go module
# proxy, for the real NetworkPolicy enforcement on the testbed's remote real node
# (tests/testbed/kuberouter.py runs only its network-policy controller). The wrapper
# module build/go/kube-router pins the release and replaces the netlink
# pseudo-version it pins (which the proxy refuses) by a netlink release.
# It runs Debian's ipset command, which build/node.sh installs with the other real-node packages.
#
# Output: $AK_KUBE_ROUTER_DIR (default ~/.cache/ak-tools/kube-router-<version>-<key>),
# the key a hash of the wrapper module, this script and the Go version. Prints the
# directory holding the kube-router binary as its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/go/kube-router"
cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
log() { printf '[build/kube-router] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required to build kube-router (none on PATH)"; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
version=$(sed -n 's#^\s*github.com/cloudnativelabs/kube-router/v2 \(v[^ ]*\).*#\1#p' "$mod/go.mod")
[ -n "$version" ] || { log "$mod/go.mod does not require github.com/cloudnativelabs/kube-router/v2"; exit 1; }
key=$( (cd "$mod" && cat go.mod go.sum "$here/kube-router.sh" && go env GOVERSION) | sha256sum | cut -c1-12)
out=${AK_KUBE_ROUTER_DIR:-$cache_root/kube-router-$version-$key}

if [ -x "$out/kube-router" ] && [ -f "$out/.complete" ]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi
. "$here/lib.sh"
sandbox_guard "kube-router"
mkdir -p "$out"
start=$(date +%s)
log "building kube-router $version (a few minutes the first time)"
# -mod=readonly: go.sum already holds every module, so the same inputs give the same binary.
(cd "$mod" && go build -mod=readonly -o "$out/kube-router.tmp" \
  -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version" \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
mv "$out/kube-router.tmp" "$out/kube-router"
printf 'kube-router %s\nbuilt in %ss\n' "$version" "$(( $(date +%s) - start ))" >"$out/.complete"
log "built in $(( $(date +%s) - start ))s: $out"
echo "$out"
