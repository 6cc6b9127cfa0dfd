# Sourced by the scripts that build a third-party Go program through the Go module
# proxy (build/local-path.sh): the wrapper module build/go/<dir> pins the program's
# module with a `tool` directive, and its go.sum holds every module, so the same
# inputs give the same binary. The binary is cached in ~/.cache/ak-tools under a key
# that hashes the wrapper module, the calling script, this file and the Go version.
#
# The caller sets these, sources this file (which sets $version, the module's
# version in go.mod), then calls go_tool_build [extra `go build` flags...]:
#   tool     name in logs and in the cache directory   (local-path-provisioner)
#   wrapper  the wrapper module's directory            ($here/go/local-path)
#   module   the program's module                      (github.com/rancher/local-path-provisioner)
#   package  the main package to build                 ($module)
#   out_env  a variable naming the output directory instead of the cache
# It prints the binary's path (<out>/<tool>) as its last line.

cache_root=${AK_TOOLS_CACHE:-$HOME/.cache/ak-tools}
log() { printf '[build/%s] %s\n' "$tool" "$*" >&2; }
version=$(awk -v m="$module" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == m ? $2 : $3) }' "$wrapper/go.mod")
[ -n "$version" ] || { log "$wrapper/go.mod does not require $module"; exit 1; }

go_tool_build() {
  local script key out bin start
  script=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)/$(basename "${BASH_SOURCE[1]}")
  command -v go >/dev/null || { log "Go is required to build $tool (none on PATH)"; exit 1; }
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
  key=$( (cd "$wrapper" && cat go.mod go.sum "$script" "${BASH_SOURCE[0]}" && go env GOVERSION) | sha256sum | cut -c1-12)
  out=${!out_env:-$cache_root/$tool-$version-$key}
  bin="$out/$tool"
  if [ -x "$bin" ] && [ -f "$out/.complete" ]; then
    log "cached: $bin"
    echo "$bin"
    return 0
  fi
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  sandbox_guard "$tool"
  mkdir -p "$out"
  start=$(date +%s)
  log "building $tool $version (a few minutes the first time)"
  # -mod=readonly: go.sum must already hold every module.
  (cd "$wrapper" && go build -mod=readonly "$@" -o "$bin.tmp" "$package")
  mv "$bin.tmp" "$bin"
  printf '%s %s\nbuilt in %ss\n' "$tool" "$version" "$(( $(date +%s) - start ))" >"$out/.complete"
  log "built in $(( $(date +%s) - start ))s: $bin"
  echo "$bin"
}
