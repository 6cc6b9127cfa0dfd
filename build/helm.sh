#!/usr/bin/env bash
# Build helm from the Go module proxy (helm is in neither Debian nor PyPI), through
# the wrapper module build/go/helm that pins it; never a release download.
#
# Output: $AK_HELM_DIR (default ~/.cache/ak-tools/helm-<version>/bin); a second run
# with the same version finds the stamp and returns at once. Prints the helm path
# as its last line.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
out=${AK_HELM_DIR:-$cache_root/helm-$HELM_VERSION/bin}
stamp="$out/.complete"
recipe="helm $HELM_VERSION recipe 2"  # bump when the build below changes
log() { printf '[build/helm] %s\n' "$*" >&2; }

if [ -x "$out/helm" ] && [ "$(head -n 1 "$stamp" 2>/dev/null)" = "$recipe" ]; then
  log "cached: $out/helm"
  echo "$out/helm"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build helm (none on PATH)"; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
mod="$here/go/helm"
grep -q "helm.sh/helm/v3 $HELM_VERSION" "$mod/go.mod" || {
  log "the wrapper module $mod pins another helm; edit its go.mod (go get helm.sh/helm/v3@$HELM_VERSION)"
  exit 1
}
. "$here/lib.sh"
sandbox_guard "helm"
mkdir -p "$out"
start=$(date +%s)
log "building helm $HELM_VERSION (a few minutes the first time)"
# As helm's Makefile: the default Kubernetes version (.Capabilities.KubeVersion in
# `helm template`/`helm lint`) follows the client-go it is built with.
client_go=$(cd "$mod" && go list -f '{{.Version}}' -m k8s.io/client-go)
kube_minor=$(echo "$client_go" | cut -d. -f2)
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$kube_minor"
done
(cd "$mod" && go build -ldflags "$ldflags" -o "$out/helm" helm.sh/helm/v3/cmd/helm)
"$out/helm" version --short >&2
printf '%s\nbuilt in %ss\n' "$recipe" "$(( $(date +%s) - start ))" >"$stamp"
log "built in $(( $(date +%s) - start ))s: $out/helm"
echo "$out/helm"
