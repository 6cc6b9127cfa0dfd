#!/usr/bin/env python3
"""Write a FROM-scratch OCI image layout for the static ``ak`` binary; stdlib only.

    python3 build/oci.py --binary dist/ak --out dist/oci --tag 0.1.0

The image holds one layer: ``/ak`` (the static binary), an empty world-writable
``/tmp`` (mount an emptyDir over it when the root filesystem is read-only: the
binary unpacks itself into ``$TMPDIR`` at start), and ``/etc/passwd`` and
``/etc/group`` naming the non-root user 65532 ("nonroot") it runs as.

Reproducible: the same binary, tag and epoch give the same bytes, so the same
digests. Tar entries are sorted with fixed mtimes (``SOURCE_DATE_EPOCH``, else
0), uid/gid 0, no user or group names, and gzip carries no name or time.

Output: an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``)
whose index names the manifest with ``org.opencontainers.image.ref.name`` =
the tag, so ``skopeo inspect oci:DIR:TAG`` and ``skopeo copy oci:DIR:TAG
docker-archive:FILE:ak:TAG`` work. Prints the manifest digest.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USER = "65532:65532"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"
PASSWD = "root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        size = len(self.data)
        return {"mediaType": self.media_type, "digest": self.digest, "size": size, **extra}


def _json(obj: Any) -> bytes:
    # Sorted keys, no spaces: the same object always gives the same bytes.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(binary: bytes, mtime: int) -> bytes:
    """The uncompressed layer: entries sorted by path, every header fixed."""
    entries: list[tuple[str, bytes | None, int]] = [
        ("ak", binary, 0o755),
        ("etc", None, 0o755),
        ("etc/group", GROUP.encode(), 0o644),
        ("etc/passwd", PASSWD.encode(), 0o644),
        ("tmp", None, 0o1777),
    ]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in sorted(entries):
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    # filename="" and mtime=0: the gzip header records neither.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def build(binary: Path, out: Path, tag: str, epoch: int = 0) -> str:
    """Write the layout into ``out`` (replaced); return the manifest digest."""
    tar = layer_tar(binary.read_bytes(), epoch)
    layer = Blob(LAYER, _gzip(tar))
    created = _rfc3339(epoch)
    config = Blob(
        CONFIG,
        _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": created,
                "config": {
                    "User": USER,
                    "Entrypoint": ["/ak", "run"],
                    "Env": ["TMPDIR=/tmp"],
                    "WorkingDir": "/",
                    "Labels": {
                        "org.opencontainers.image.title": "actual-kubelets",
                        "org.opencontainers.image.version": tag,
                    },
                },
                "rootfs": {
                    "type": "layers",
                    "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()],
                },
                "history": [{"created": created, "created_by": "build/oci.py: static ak binary"}],
            }
        ),
    )
    manifest = Blob(
        MANIFEST,
        _json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
                "annotations": {
                    "org.opencontainers.image.title": "actual-kubelets",
                    "org.opencontainers.image.version": tag,
                    "org.opencontainers.image.created": created,
                },
            }
        ),
    )
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            manifest.descriptor(
                platform={"architecture": "amd64", "os": "linux"},
                annotations={"org.opencontainers.image.ref.name": tag},
            )
        ],
    }
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (layer, config, manifest):
        (blobs / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
    (tmp / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    (tmp / "index.json").write_bytes(_json(index))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest.digest


def _rfc3339(epoch: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, required=True, help="the static ak binary")
    parser.add_argument("--out", type=Path, required=True, help="the OCI layout directory")
    parser.add_argument("--tag", required=True, help="the image tag (ref.name)")
    args = parser.parse_args(argv)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    print(build(args.binary, args.out, args.tag, epoch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
