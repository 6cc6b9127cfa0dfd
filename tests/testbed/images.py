"""Container images for the real-node testbed, without any registry.

Four images, written as one docker-archive (``ctr images import`` reads it):

* ``PAUSE``: the pod sandbox, a static Go program (``build/go/pause``) that
  holds the namespaces, reaps children and exits on TERM/INT. containerd's
  ``sandbox_image`` names it.
* ``SHELL``: static busybox (Debian's busybox-static) with every applet linked
  into ``/bin``: sh, nc, httpd, wget, tar (``kubectl cp``), sleep...
* ``WEBHOOK``: SHELL plus ``/bin/webhook`` (``build/go/webhook``), an HTTPS
  admission and conversion webhook server, as operators run.
* ``CONTROLLER``: SHELL plus the static kubectl the testbed builds and
  ``/bin/controller``, a loop that, with no flags (plain in-cluster config),
  prints who it is, lists the pods of its namespace and writes a ConfigMap
  there, as a controller would.

The archive is reproducible (sorted entries, fixed times) so its digest changes
only when an input does; pods use ``imagePullPolicy: IfNotPresent``/``Never``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "ak-testbed.local"
PAUSE = f"{REGISTRY}/pause:1"
SHELL = f"{REGISTRY}/shell:1"
CONTROLLER = f"{REGISTRY}/controller:1"
WEBHOOK = f"{REGISTRY}/webhook:1"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"

# The controller: what a real controller does with in-cluster config, as shell.
# Any kubectl flag that overrides the connection (server, token, timeout) would
# turn in-cluster config off, so it passes none.
CONTROLLER_SCRIPT = """#!/bin/sh
set -u
sa=/var/run/secrets/kubernetes.io/serviceaccount
ns=$(cat $sa/namespace)
echo "controller: namespace $ns via $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
i=0
while true; do
  i=$((i + 1))
  who=$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)
  echo "controller: round $i as $who"
  pods=$(kubectl get pods -o name 2>&1 | tr '\\n' ' ')
  echo "controller: pods: $pods"
  cat <<EOF | kubectl apply -f - 2>&1 | sed 's/^/controller: /'
apiVersion: v1
kind: ConfigMap
metadata:
  name: controller-state
data:
  round: "$i"
  pods: "$pods"
  host: "$(hostname)"
EOF
  if kubectl get secrets >/dev/null 2>&1; then
    echo "controller: secrets: allowed"
  else
    echo "controller: secrets: forbidden"
  fi
  sleep "${INTERVAL:-3}"
done
"""


@dataclass(frozen=True)
class _Image:
    ref: str
    layers: list[bytes]
    cmd: list[str]
    entrypoint: list[str] | None = None


def _tar(entries: list[tuple[str, bytes | None, int, str | None]]) -> bytes:
    """A layer; entries are (path, data or None for a directory, mode, symlink target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, link in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _busybox_layer(busybox: Path) -> bytes:
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    entries: list[tuple[str, bytes | None, int, str | None]] = [
        ("bin", None, 0o755, None),
        ("bin/busybox", busybox.read_bytes(), 0o755, None),
        ("etc", None, 0o755, None),
        ("etc/passwd", PASSWD.encode(), 0o644, None),
        ("etc/group", GROUP.encode(), 0o644, None),
        ("root", None, 0o700, None),
        ("tmp", None, 0o1777, None),
        ("var", None, 0o755, None),
        ("var/www", None, 0o755, None),
        ("var/www/index.html", b"hello from a real container\n", 0o644, None),
    ]
    entries += [(f"bin/{a}", None, 0o777, "busybox") for a in applets if a != "busybox"]
    return _tar(entries)


def images(pause: Path, busybox: Path, kubectl: Path, webhook: Path) -> list[_Image]:
    shell = _busybox_layer(busybox)
    server = _tar([("bin", None, 0o755, None), ("bin/webhook", webhook.read_bytes(), 0o755, None)])
    controller = _tar(
        [
            ("bin", None, 0o755, None),
            ("bin/kubectl", kubectl.read_bytes(), 0o755, None),
            ("bin/controller", CONTROLLER_SCRIPT.encode(), 0o755, None),
        ]
    )
    return [
        _Image(PAUSE, [_tar([("pause", pause.read_bytes(), 0o755, None)])], [], ["/pause"]),
        _Image(SHELL, [shell], ["/bin/sh"]),
        _Image(CONTROLLER, [shell, controller], ["/bin/controller"]),
        _Image(WEBHOOK, [shell, server], ["/bin/webhook"]),
    ]


def write_archive(out: Path, imgs: list[_Image]) -> str:
    """One docker-archive with every image; returns its sha256."""
    blobs: dict[str, bytes] = {}
    manifest = []
    for img in imgs:
        layer_names = []
        diff_ids = []
        for layer in img.layers:
            digest = hashlib.sha256(layer).hexdigest()
            blobs[f"{digest}/layer.tar"] = layer
            layer_names.append(f"{digest}/layer.tar")
            diff_ids.append(f"sha256:{digest}")
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/bin"],
                "Cmd": img.cmd or None,
                "Entrypoint": img.entrypoint,
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        data = json.dumps(config, sort_keys=True).encode()
        name = hashlib.sha256(data).hexdigest() + ".json"
        blobs[name] = data
        manifest.append({"Config": name, "RepoTags": [img.ref], "Layers": layer_names})
    blobs["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    entries: list[tuple[str, bytes | None, int, str | None]] = [
        (name, data, 0o644, None) for name, data in blobs.items()
    ]
    entries += [(d, None, 0o755, None) for d in {n.split("/")[0] for n in blobs if "/" in n}]
    archive = _tar(entries)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(archive)
    tmp.rename(out)
    return hashlib.sha256(archive).hexdigest()


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="write the real-node testbed's images")
    p.add_argument("--pause", type=Path, required=True)
    p.add_argument("--busybox", type=Path, default=Path("/bin/busybox"))
    p.add_argument("--kubectl", type=Path, required=True)
    p.add_argument("--webhook", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    imgs = images(args.pause, args.busybox, args.kubectl, args.webhook)
    print(write_archive(args.out, imgs))


if __name__ == "__main__":
    main()
