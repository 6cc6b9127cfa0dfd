# Sourced by the build scripts.

# sandbox_guard WHAT: WHAT is missing (or its inputs changed) and this script runs inside the
# test sandbox, whose network namespace reaches no package registry: fail at once with the
# command that makes it, not with a module download error minutes later.
sandbox_guard() {
  if [ -n "${AK_SANDBOX:-}" ]; then
    printf '[build] %s is not built (or its inputs changed) and cannot be built inside the test sandbox, which reaches no package registry: run `bash build/%s` (`bash build/test.sh` runs every build before the tests)\n' \
      "$1" "$(basename "$0")" >&2
    exit 3
  fi
}
