#!/usr/bin/env bash
# Build the container image without a Docker engine: a FROM-scratch OCI image
# layout holding the static binary (build/binary.sh), written by build/oci.py
# (stdlib, reproducible), checked with skopeo and umoci, and exported as a
# docker-archive for `docker load` / `kind load image-archive` / `ctr import`.
#
#   dist/oci                       the OCI layout (tag = AK's version)
#   dist/ak-image-<version>.tar    docker-archive, image name ak:<version>
#
# Prints the image (manifest) digest as its last line.
# Push with: skopeo copy oci:dist/oci:<version> docker://REGISTRY/actual-kubelets:<version>
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[build/image] %s\n' "$*" >&2; }

bash build/prereqs.sh  # skopeo and umoci

binary=$(bash build/binary.sh | tail -n 1)
version=$(/usr/bin/python3 -c 'import re,sys; print(re.search(r"__version__ = \"(.*)\"", open("ak/__init__.py").read())[1])')
layout=dist/oci
archive=dist/ak-image-$version.tar
digest=$(SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} /usr/bin/python3 build/oci.py --binary "$binary" --out "$layout" --tag "$version")

# Validation: skopeo parses index, manifest and config; umoci unpacks the layer
# and turns the config into a runtime bundle.
skopeo inspect "oci:$layout:$version" >/dev/null
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
umoci unpack --rootless --image "$layout:$version" "$check/bundle" >/dev/null
[ -x "$check/bundle/rootfs/ak" ] || { log "unpacked image has no /ak"; exit 1; }
grep -q '"uid": *65532' "$check/bundle/config.json" || { log "image does not run as 65532"; exit 1; }

rm -f "$archive"
skopeo copy -q "oci:$layout:$version" "docker-archive:$archive:ak:$version" >/dev/null
log "image ak:$version $digest"
log "  OCI layout $layout ($(du -sh "$layout" | cut -f1)), docker-archive $archive ($(du -h "$archive" | cut -f1))"
echo "$digest"
