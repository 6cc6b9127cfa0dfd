#!/usr/bin/env bash
# Build virtual-kubelet's provider e2e suite (github.com/virtual-kubelet/virtual-kubelet,
# test/e2e) as a test binary, through the wrapper module build/go/vk-e2e that
# pins it and says which of its tests cannot apply to AK; only the Go module
# proxy is used. tests/cluster/test_vk_e2e.py runs it against an AK node.
#
# Output: $AK_VK_E2E_DIR (default ~/.cache/ak-tools/vk-e2e-<key>/vk-e2e.test), the
# key a hash of the wrapper module's files, this script and the Go version, so
# editing the skip list, the pins or the build recipe rebuilds and nothing else does. Prints the binary's path
# as its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod="$here/go/vk-e2e"
cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
log() { printf '[build/vk-e2e] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required to build the VK e2e suite (none on PATH)"; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
vk_version=$(sed -n 's#^require github.com/virtual-kubelet/virtual-kubelet \(v[^ ]*\)$#\1#p' "$mod/go.mod")
[ -n "$vk_version" ] || { log "$mod/go.mod does not require github.com/virtual-kubelet/virtual-kubelet on one line"; exit 1; }
key=$( (cd "$mod" && cat go.mod go.sum ./*.go "$here/vk-e2e.sh" && go env GOVERSION) | sha256sum | cut -c1-12)
out=${AK_VK_E2E_DIR:-$cache_root/vk-e2e-$vk_version-$key}
bin="$out/vk-e2e.test"

if [ -x "$bin" ] && [ -f "$out/.complete" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi
. "$here/lib.sh"
sandbox_guard "virtual-kubelet's e2e suite"
mkdir -p "$out"
start=$(date +%s)
log "building virtual-kubelet $vk_version test/e2e (a few minutes the first time)"
# -mod=readonly: go.sum must already hold every module; the build never
# resolves anything new, so the same inputs give the same suite.
(cd "$mod" && go test -c -mod=readonly -ldflags "-s -w" -o "$bin" .)
"$bin" -list >/dev/null
printf 'virtual-kubelet %s\nbuilt in %ss\n' "$vk_version" "$(( $(date +%s) - start ))" >"$out/.complete"
log "built in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
