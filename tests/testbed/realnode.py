"""A real node for a testbed cluster: kubelet + containerd + runc + a CNI bridge.

Runs only inside ``tests.testbed.sandbox`` (a network, mount and PID namespace of
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

A node carries the label and taint ``ak-testbed/real-node=<placement>``
("true" unless told otherwise), so pods land on it only by asking for that
value. With ``network_policy`` it enforces the cluster's NetworkPolicies for
its pods (``kuberouter``: kube-router's network-policy controller, started once
the node is Ready and stopped before it).

What the node's files say (CNI, containerd, the holder scripts) is in
``nodefiles``; its cgroup subtree is made and removed by ``cgroups``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.testbed import sandbox
from tests.testbed.cgroups import CGROUP_PREFIX, remove_cgroup, remove_stale_cgroups
from tests.testbed.kuberouter import KubeRouter
from tests.testbed.nodefiles import cni_config, containerd_config, write_holder
from tests.testbed.procs import Proc, wait_for

if TYPE_CHECKING:
    from tests.testbed.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
LABEL = "ak-testbed/real-node"
# A node's label and taint value unless told otherwise (see ``placement``).
PLACEMENT = "true"


def taint_for(placement: str = PLACEMENT) -> dict[str, str]:
    """Other tests' pods (kwok images that do not exist) must never land here."""
    return {"key": LABEL, "value": placement, "effect": "NoSchedule"}


def toleration_for(placement: str = PLACEMENT) -> dict[str, str]:
    return {"key": LABEL, "operator": "Equal", "value": placement, "effect": "NoSchedule"}


TAINT = taint_for()
TOLERATION = toleration_for()
SERVICE_IP = "10.0.0.1"


class NodeUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeTools:
    """The binaries and the image archive that ``build/node.sh`` makes."""

    kubelet: Path
    images: Path
    kube_proxy: Path
    coredns: Path

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
        return cls(
            Path(d) / "kubelet", Path(d) / "images.tar", Path(d) / "kube-proxy", Path(d) / "coredns"
        )


# --- the node -----------------------------------------------------------------


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class RealNode:
    """One kubelet node of ``cluster``.

    Its index, which picks its address, bridge and pod CIDR, is the first whose
    address is free on ``lo``: adding an address that exists fails, so nodes of
    several processes in one sandbox (a test and the demo it runs) never clash.
    ``placement`` is the value of its ``LABEL`` label and taint; with
    ``network_policy`` kube-router enforces NetworkPolicies for its pods
    (``self.netpol`` while it runs).
    """

    def __init__(
        self,
        cluster: Cluster,
        name: str,
        tools: NodeTools | None = None,
        taint: bool = True,
        *,
        placement: str = PLACEMENT,
        network_policy: bool = False,
    ) -> None:
        if not sandbox.inside():
            why = sandbox.available() or "this process is not inside it"
            raise NodeUnavailable(
                "a real node runs only inside the testbed sandbox (python -m tests.testbed.sandbox "
                f"-- COMMAND; build/test.sh does it): {why}"
            )
        self.cluster = cluster
        self.name = name
        self.tools = tools or NodeTools.find()
        self.taint = taint
        self.placement = placement
        self.network_policy = network_policy
        self.netpol: KubeRouter | None = None
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
            json.dumps(cni_config(self.name, self.bridge, self.pod_cidr, d / "cni-ipam"))
        )
        (d / "containerd.toml").write_text(containerd_config(d, self.socket))
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
            # The node's own address: where ``clusternet.ClusterDNS`` serves
            # when a test starts it (until then, lookups just fail).
            "clusterDNS": [self.ip],
            "serializeImagePulls": False,
            "podCIDR": self.pod_cidr,
            # The machine's disk and memory are not this node's to protect.
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "registerWithTaints": [taint_for(self.placement)] if self.taint else [],
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
            f"--node-labels={LABEL}={self.placement}",
            "--v=2",
        ]
        write_holder(d, self.cgroup, self.socket, self.tools.images, kubelet)

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

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
            if self.network_policy:
                self.netpol = KubeRouter(self).start()
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
        if self.netpol is not None:
            self.netpol.stop()
            self.netpol = None
        if self.proc is not None:
            self.proc.stop(timeout=15)
            self.proc = None
        remove_cgroup(self.cgroup)
        if self.index >= 0:
            _run("ip", "link", "del", self.bridge, check=False)
            _run("ip", "addr", "del", f"{self.ip}/32", "dev", "lo", check=False)
        for rule in self._rules:
            _run("iptables", "-t", "nat", "-D", "PREROUTING", *rule, check=False)
        self._rules.clear()
        # The images and snapshots (~140 MB a node); the logs stay for a look.
        shutil.rmtree(self.dir / "containerd", ignore_errors=True)

    def describe(self) -> str:
        netpol = f"; {self.netpol.describe()}" if self.netpol is not None else ""
        return f"real node {self.name} ({self.ip}): logs {self.logs}{netpol}"

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
