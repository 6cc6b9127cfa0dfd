#!/usr/bin/env bash
# Build metrics-server (sigs.k8s.io/metrics-server) through the wrapper module
# build/go/metrics-server that pins it; only the Go module proxy is used.
# tests/cluster/test_real_metrics.py runs it against the local testbed cluster,
# scraping an AK node, for `kubectl top` and a HorizontalPodAutoscaler.
#
# Output: $AK_METRICS_SERVER_DIR (default ~/.cache/ak-tools/metrics-server-<version>-<key>/metrics-server),
# the key a hash of the wrapper module, this script and the Go version. Prints the
# binary's path as its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/go/metrics-server"
cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
log() { printf '[build/metrics-server] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required to build metrics-server (none on PATH)"; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
version=$(sed -n 's#^\s*\(require \)\?sigs.k8s.io/metrics-server \(v[^ ]*\).*#\2#p' "$mod/go.mod")
[ -n "$version" ] || { log "$mod/go.mod does not require sigs.k8s.io/metrics-server"; exit 1; }
key=$( (cd "$mod" && cat go.mod go.sum "$here/metrics-server.sh" && go env GOVERSION) | sha256sum | cut -c1-12)
out=${AK_METRICS_SERVER_DIR:-$cache_root/metrics-server-$version-$key}
bin="$out/metrics-server"

if [ -x "$bin" ] && [ -f "$out/.complete" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi
. "$here/lib.sh"
sandbox_guard "metrics-server"
mkdir -p "$out"
start=$(date +%s)
log "building metrics-server $version (a few minutes the first time)"
# -mod=readonly: go.sum must already hold every module, so the same inputs give the same binary.
(cd "$mod" && go build -mod=readonly -ldflags "-s -w" -o "$bin.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server)
mv "$bin.tmp" "$bin"
printf 'metrics-server %s\nbuilt in %ss\n' "$version" "$(( $(date +%s) - start ))" >"$out/.complete"
log "built in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
