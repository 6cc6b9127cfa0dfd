"""A real node for a testbed cluster: kubelet + containerd + runc + a CNI bridge.

Runs only inside ``ak.testbed.sandbox`` (a network, mount and PID namespace of
the run's own). Each node gets, in that sandbox:

* an address on ``lo`` (192.0.2.10+i: the kubelet refuses loopback), its own
  bridge ``akbr<i>`` with pod CIDR 10.244.<i>.0/24, and a DNAT of the cluster's
  service address 10.0.0.1:443 (what the kubelet tells pods) to the API server on
  127.0.0.1: the stand-in for kube-proxy. The sandbox's ``HOST_IP`` reaches
  every API server on its own port the same way;
* a holder process in a mount + PID + cgroup namespace of its own
  (``unshare``), which mounts a tmpfs over ``/run`` and ``/var/lib``, binds the
  node's directory over ``/var/log`` and files over the sysctls the kubelet
  rewrites, remounts the cgroup hierarchies so that the node's cgroup
  (``ak-node-<name>`` under this process's own) is their root, then runs
  containerd, imports the testbed images and runs the kubelet.

So the machine's sysctls, ``/run``, ``/var/lib/kubelet``, ``/var/log`` and cgroup
tree are untouched; stopping the holder ends its PID namespace, which kills
every shim and container; ``stop`` then removes the node's cgroups, bridge and
rules. The kubelet is set up as in production: a ``system:node:<name>`` client
certificate, x509 + webhook authentication, Webhook authorization.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ak.testbed import images, sandbox
from ak.testbed.procs import Proc, wait_for

if TYPE_CHECKING:
    from ak.testbed.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
LABEL = "ak-testbed/real-node"
# Other tests' pods (kwok images that do not exist) must never land here.
TAINT = {"key": LABEL, "value": "true", "effect": "NoSchedule"}
TOLERATION = {"key": LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
SERVICE_IP = "10.0.0.1"
CGROUP_PREFIX = "ak-node-"
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


class NodeUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeTools:
    """The kubelet binary and the image archive that ``build/node.sh`` makes."""

    kubelet: Path
    images: Path

    @classmethod
    def find(cls) -> NodeTools:
        d = os.environ.get("AK_NODE_TOOLS")
        if not d:
            script = REPO / "build" / "node.sh"
            done = subprocess.run(
                ["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False
            )
            if done.returncode != 0:
                raise NodeUnavailable(f"bash {script} exited {done.returncode}; see its output")
            d = done.stdout.strip().splitlines()[-1]
            os.environ["AK_NODE_TOOLS"] = d
        return cls(Path(d) / "kubelet", Path(d) / "images.tar")


# --- cgroups ------------------------------------------------------------------


def hierarchies() -> dict[str, Path]:
    """Mount point of each cgroup hierarchy -> this process's cgroup in it."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    out: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype, _, options = post.split(" ")[:3]
        mount = pre.split(" ")[4]
        if fstype == "cgroup2":
            out[mount] = Path(mount) / own.get("", "/").lstrip("/")
        elif fstype == "cgroup":
            opts = [o for o in options.split(",") if o not in ("rw", "ro")]
            key = next((k for k in own if k and set(k.split(",")) <= set(opts)), None)
            if key is not None:
                out[mount] = Path(mount) / own[key].lstrip("/")
    return out


def _remove_tree(path: Path, timeout: float = 20) -> bool:
    """rmdir a cgroup bottom-up, waiting for its dying tasks; True if gone."""
    deadline = time.monotonic() + timeout
    while path.exists():
        dirs = sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, path]:
            with contextlib.suppress(OSError):
                d.rmdir()
        if not path.exists() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return not path.exists()


def remove_cgroup(name: str) -> list[Path]:
    """Remove cgroup ``name`` (made by ``cgroup_commands``) from every
    hierarchy, once its tasks are dead; the paths that could not be removed."""
    return [own / name for own in hierarchies().values() if not _remove_tree(own / name)]


def remove_stale_cgroups() -> list[Path]:
    """Remove node cgroups left by an interrupted run (no task left in them)."""
    left = []
    for parent in hierarchies().values():
        with contextlib.suppress(OSError):
            for d in parent.glob(f"{CGROUP_PREFIX}*"):
                procs = list(d.rglob("cgroup.procs"))
                if all(not p.read_text().strip() for p in procs) and not _remove_tree(d, 2):
                    left.append(d)
    return left


def cgroup_commands(name: str) -> tuple[list[str], list[str]]:
    """Shell lines that make cgroup ``name`` (under this process's own, in every
    hierarchy) the root of a cgroup namespace: the first join it (run before
    ``unshare --cgroup``), the second remount the hierarchies inside, where
    the namespace shows that cgroup as ``/``."""
    own_paths = hierarchies()
    joins = []
    for own in own_paths.values():
        path = own / name
        path.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (own / f).exists():
                (path / f).write_text((own / f).read_text())
        joins.append(f"echo $$ > {path}/cgroup.procs")
    mounts = ["mount -t tmpfs -o mode=755 ak-cgroup /sys/fs/cgroup"]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype, _, options = post.split(" ")[:3]
        mount = pre.split(" ")[4]
        if mount not in own_paths:
            continue
        mounts.append(f"mkdir -p {mount}")
        if fstype == "cgroup2":
            mounts.append(f"mount -t cgroup2 cgroup2 {mount}")
        else:
            opts = ",".join(o for o in options.split(",") if o not in ("rw", "ro"))
            if "name=" in opts and not any(c in opts for c in ("cpu", "memory")):
                opts = "none," + opts
            mounts.append(f"mount -t cgroup -o {opts} cgroup {mount}")
    return joins, mounts


# --- the node -----------------------------------------------------------------


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class RealNode:
    """One kubelet node of ``cluster``.

    Its index, which picks its address, bridge and pod CIDR, is the first whose
    address is free on ``lo``: adding an address that exists fails, so nodes of
    several processes in one sandbox (a test and the demo it runs) never clash.
    """

    def __init__(
        self,
        cluster: Cluster,
        name: str,
        tools: NodeTools | None = None,
        taint: bool = True,
    ) -> None:
        if not sandbox.inside():
            why = sandbox.available() or "this process is not inside it"
            raise NodeUnavailable(
                "a real node runs only inside the testbed sandbox (python -m ak.testbed.sandbox "
                f"-- COMMAND; build/test.sh does it): {why}"
            )
        self.cluster = cluster
        self.name = name
        self.tools = tools or NodeTools.find()
        self.taint = taint
        self.index = -1
        self.dir = cluster.dir / f"node-{name}"
        self.cgroup = f"{CGROUP_PREFIX}{name}-{uuid.uuid4().hex[:6]}"
        self.proc: Proc | None = None
        self._rules: list[list[str]] = []

    # -- files ---------------------------------------------------------------
    def _write_files(self) -> None:
        d = self.dir
        for sub in ("containerd", "cni", "cni-ipam", "log", "sysctl", "logs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        kubeconfig = self.cluster.node_kubeconfig(self.name)
        serving = self.cluster.ca.issue(
            f"kubelet-{self.name}",
            f"system:node:{self.name}",
            orgs=("system:nodes",),
            server=True,
            dns=(self.name,),
            ips=(self.ip,),
        )
        (d / "resolv.conf").write_text("options ndots:5\n")
        (d / "cni" / "10-bridge.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": f"ak-{self.name}",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": self.bridge,
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": self.pod_cidr}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(d / "cni-ipam"),
                            },
                        }
                    ],
                }
            )
        )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (d / "containerd.toml").write_text(
            f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.socket}"
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
        )
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": self.ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": self.ip,
            "healthzPort": 10248,
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cluster.ca.pair.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "oomScoreAdj": 0,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "protectKernelDefaults": False,
            "failSwapOn": False,
            "podLogsDir": "/var/log/pods",
            "volumePluginDir": str(d / "volume-plugins"),
            "resolvConf": str(d / "resolv.conf"),
            "clusterDomain": "cluster.local",
            "serializeImagePulls": False,
            "podCIDR": self.pod_cidr,
            # The machine's disk and memory are not this node's to protect.
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "registerWithTaints": [TAINT] if self.taint else [],
            "shutdownGracePeriod": "0s",
            # Secret and ConfigMap volumes (AK's token copies among them) are
            # refreshed on each pod sync: 10 s instead of 1 min keeps tests short.
            "syncFrequency": "10s",
            "containerLogMaxSize": "10Mi",
        }  # fmt: skip
        (d / "kubelet.json").write_text(json.dumps(config))
        kubelet = [
            str(self.tools.kubelet),
            f"--config={d / 'kubelet.json'}",
            f"--kubeconfig={kubeconfig}",
            "--root-dir=/var/lib/kubelet",
            f"--cert-dir={d / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.ip}",
            f"--node-labels={LABEL}=true",
            "--v=2",
        ]
        self._write_holder(kubelet)

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    def _write_holder(self, kubelet: list[str]) -> None:
        d = self.dir
        joins, mounts = cgroup_commands(self.cgroup)
        shadows = []
        for s in SYSCTLS:
            src = Path("/proc/sys") / s
            if src.exists():
                copy = d / "sysctl" / s.replace("/", ".")
                copy.write_text(src.read_text())
                shadows.append(f"mount --bind {copy} {src}")
        ctr = f"ctr --address {self.socket} -n k8s.io"
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
{ctr} images import {self.tools.images} >>{d}/logs/images.log 2>&1
{" ".join(kubelet)} >>{d}/logs/kubelet.log 2>&1 &
kpid=$!
trap 'kill -TERM $kpid $cpid 2>/dev/null; wait' TERM INT
wait
"""
        (d / "holder.sh").write_text(inner)
        outer = "\n".join(
            [
                "#!/bin/sh",
                "set -eu",
                *joins,
                "exec unshare --cgroup --mount --pid --fork --kill-child --mount-proc "
                f"--propagation private /bin/sh {d}/holder.sh",
            ]
        )
        (d / "start.sh").write_text(outer + "\n")

    @property
    def ip(self) -> str:
        return f"192.0.2.{10 + self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def bridge(self) -> str:
        return f"akbr{self.index}"

    # -- network -------------------------------------------------------------
    def _claim_index(self) -> None:
        for i in range(200):
            self.index = i
            if _run("ip", "addr", "add", f"{self.ip}/32", "dev", "lo", check=False).returncode == 0:
                return
        self.index = -1
        raise NodeUnavailable("no free node address in 192.0.2.10-209")

    def _network(self) -> None:
        rule = ["-s", self.pod_cidr, "-d", SERVICE_IP, "-p", "tcp", "--dport", "443"]
        rule += ["-j", "DNAT", "--to-destination", f"127.0.0.1:{self.cluster.port}"]
        _run("iptables", "-t", "nat", "-A", "PREROUTING", *rule)
        self._rules.append(rule)

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 90) -> RealNode:
        remove_stale_cgroups()
        try:
            self._claim_index()
            self._write_files()
            self._network()
            start = ["/bin/sh", str(self.dir / "start.sh")]
            self.proc = Proc(f"node-{self.name}", start, self.logs / "holder.log")
            wait_for(f"node {self.name} Ready", self.ready, timeout, [self.proc])
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def ready(self) -> bool:
        with self.cluster.http() as c:
            r = c.get(f"/api/v1/nodes/{self.name}")
        if r.status_code != 200:
            return False
        conds = r.json().get("status", {}).get("conditions", [])
        return any(x["type"] == "Ready" and x["status"] == "True" for x in conds)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=15)
            self.proc = None
        for own in hierarchies().values():
            _remove_tree(own / self.cgroup)
        if self.index >= 0:
            _run("ip", "link", "del", self.bridge, check=False)
            _run("ip", "addr", "del", f"{self.ip}/32", "dev", "lo", check=False)
        for rule in self._rules:
            _run("iptables", "-t", "nat", "-D", "PREROUTING", *rule, check=False)
        self._rules.clear()

    def describe(self) -> str:
        return f"real node {self.name} ({self.ip}): logs {self.logs}"

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ctr`` against this node's containerd, in the kubelet's namespace."""
        return _run("ctr", f"--address={self.socket}", "-n", "k8s.io", *args, check=False)

    def import_image(self, archive: Path) -> None:
        """Load an image archive (docker-archive or OCI) as if it had been pulled."""
        done = self.ctr("images", "import", str(archive))
        if done.returncode != 0:
            raise RuntimeError(f"importing {archive} into {self.name}: {done.stderr}")


def require_tools() -> None:
    for tool in ("containerd", "ctr", "runc", "unshare", "iptables"):
        if shutil.which(tool) is None:
            raise NodeUnavailable(f"{tool} is not installed (build/node.sh installs it)")
