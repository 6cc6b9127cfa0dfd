#!/usr/bin/env bash
# Build rancher's local-path-provisioner (github.com/rancher/local-path-provisioner,
# kind's default StorageClass) through the Go module proxy, pinned by the wrapper
# module build/go/local-path. tests/testbed/localpath.py runs it against the testbed's
# remote cluster: real dynamic provisioning onto the real node's disk.
#
# Output: $AK_LOCAL_PATH_DIR (default ~/.cache/ak-tools/local-path-provisioner-<version>-<key>);
# prints the binary's path as its last line (build/go-tool.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tool=local-path-provisioner
wrapper="$here/go/local-path"
module=github.com/rancher/local-path-provisioner
package=$module
out_env=AK_LOCAL_PATH_DIR
# shellcheck source=go-tool.sh
. "$here/go-tool.sh"
go_tool_build -ldflags "-s -w -X main.VERSION=$version"
