"""What a real node runs from: its CNI and containerd configuration and the
holder scripts that give containerd and the kubelet namespaces of their own.

Each is rendered from the node's directory, names and addresses alone, so
``realnode`` decides where a node lives and these only say what its files hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.testbed import images
from tests.testbed.cgroups import cgroup_commands, start_script

# What the kubelet sets when protectKernelDefaults is false: machine-wide
# settings, so each is shadowed by a file of the node's own.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


def cni_config(name: str, bridge: str, pod_cidr: str, ipam_dir: Path) -> dict[str, Any]:
    """A bridge network of the node's own, addresses from its pod CIDR."""
    return {
        "cniVersion": "0.4.0",
        "name": f"ak-{name}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def containerd_config(d: Path, socket: Path) -> str:
    """containerd with its state under ``d``, serving CRI on ``socket``."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{d}/containerd-ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"
[{cri}]
  sandbox_image = "{images.PAUSE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
"""


def write_holder(
    d: Path, cgroup: str, socket: Path, image_archive: Path, kubelet: list[str]
) -> None:
    """``start.sh`` joins cgroup ``cgroup`` and runs ``holder.sh`` as PID 1 of new
    namespaces, where it mounts the node's private trees, starts containerd,
    imports ``image_archive`` and runs ``kubelet``."""
    joins, mounts = cgroup_commands(cgroup)
    shadows = []
    for s in SYSCTLS:
        src = Path("/proc/sys") / s
        if src.exists():
            copy = d / "sysctl" / s.replace("/", ".")
            copy.write_text(src.read_text())
            shadows.append(f"mount --bind {copy} {src}")
    ctr = f"ctr --address {socket} -n k8s.io"
    inner = f"""#!/bin/sh
# PID 1 of the node's namespaces: private mounts, then containerd and the kubelet.
set -eu
{chr(10).join(mounts)}
mount -t tmpfs -o mode=755 ak-run /run
mount -t tmpfs -o mode=755 ak-varlib /var/lib
mkdir -p /var/lib/kubelet /run/netns
mount --bind {d}/log /var/log
{chr(10).join(shadows)}
containerd --config {d}/containerd.toml >>{d}/logs/containerd.log 2>&1 &
cpid=$!
i=0
until {ctr} version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 200 ] || {{ echo "containerd did not start" >&2; exit 1; }}
  sleep 0.05
done
{ctr} images import {image_archive} >>{d}/logs/images.log 2>&1
{" ".join(kubelet)} >>{d}/logs/kubelet.log 2>&1 &
kpid=$!
trap 'kill -TERM $kpid $cpid 2>/dev/null; wait' TERM INT
wait
"""
    (d / "holder.sh").write_text(inner)
    (d / "start.sh").write_text(start_script(joins, "--cgroup --mount --pid", d / "holder.sh"))
