"""Real NetworkPolicy enforcement for a real node: kube-router's network-policy controller.

A remote cluster isolates tenants only if its network plugin enforces
NetworkPolicies; the real-node testbed's CNI bridge enforces nothing. This runs
kube-router (``build/kube-router.sh`` builds it from the Go module proxy) with
its network-policy controller alone (``--run-firewall``; no router, no service
proxy) for one real node, in the sandbox's network namespace, as the node's
DaemonSet pod would in production. It turns the cluster's NetworkPolicies into
iptables chains and ipsets for the pods of THAT node only (it selects them by
their host IP), so pods on the cluster's other real nodes are untouched. Bridged
pod-to-pod frames pass through iptables because bridge netfilter is on in the
sandbox's network namespace; this kernel has the ``physdev`` and ``set``
matches it uses.

Every rule and ipset lives in the sandbox's network namespace, so the machine's
are untouched and all of it goes when the run ends; ``stop`` removes it sooner
with ``kube-router --cleanup-config`` (which destroys every ipset of that
namespace: kube-router is the only user of ipsets there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from ak.testbed.procs import Proc, free_port, wait_for

if TYPE_CHECKING:
    from ak.testbed.realnode import RealNode

REPO = Path(__file__).resolve().parents[2]
ENV = "AK_KUBE_ROUTER"
# What the testbed's API servers serve Services from (components.apiserver).
SERVICE_RANGE = "10.0.0.0/24"
# Logged at --v=1 once a sync has written its rules (a failed sync never gets there).
SYNCED = "Restoring IPv4 iptables rules took"


class KubeRouterUnavailable(RuntimeError):
    pass


def find_binary() -> Path:
    """kube-router as ``build/kube-router.sh`` builds it (or finds it cached);
    ``$AK_KUBE_ROUTER`` names its directory and skips the script."""
    d = os.environ.get(ENV)
    if not d:
        script = REPO / "build" / "kube-router.sh"
        done = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise KubeRouterUnavailable(f"bash {script} exited {done.returncode}; see its output")
        d = done.stdout.strip().splitlines()[-1]
        os.environ[ENV] = d
    return Path(d) / "kube-router"


class KubeRouter:
    """kube-router's network-policy controller for ``node``; ``start``/``stop``."""

    def __init__(self, node: RealNode, binary: Path | None = None) -> None:
        self.node = node
        self.binary = binary or find_binary()
        self.dir = node.dir / "kube-router"
        self.log = self.dir / "kube-router.log"
        self.proc: Proc | None = None

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            f"--hostname-override={self.node.name}",
            f"--kubeconfig={self.node.cluster.kubeconfig}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            # Its health server listens on every address by default.
            "--health-addr=127.0.0.1",
            f"--health-port={free_port()}",
            "--metrics-port=0",
            "--v=1",
        ]

    def start(self, timeout: float = 60) -> KubeRouter:
        if shutil.which("ipset") is None:
            raise KubeRouterUnavailable("ipset is not installed (build/node.sh installs it)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = Proc(f"kube-router-{self.node.name}", self.argv(), self.log)
        try:
            wait_for(
                f"kube-router's first policy sync for {self.node.name}",
                lambda: SYNCED in self.log.read_text(errors="replace"),
                timeout,
                [self.proc],
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.stop()
        self.proc = None
        with self.log.open("ab") as out:
            subprocess.run(
                [str(self.binary), "--cleanup-config"],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=60,
            )

    def describe(self) -> str:
        return f"kube-router for {self.node.name}: log {self.log}"
