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
matches it uses. Its top-level chains have fixed names, so one network
namespace (one sandbox) holds one such controller at a time: ``start`` refuses
a second.

Every rule and ipset lives in the sandbox's network namespace, so the machine's
are untouched and all of it goes when the run ends; ``stop`` removes the
controller's chains and ipsets sooner (``cleanup_commands``), touching nothing
else. Not ``kube-router --cleanup-config``: it cleans up for all three
controllers, and the service proxy's part runs ``modprobe ip_vs``, which would
load a module into the machine's kernel.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from tests.testbed import sandbox
from tests.testbed.procs import Proc, free_port, wait_for
from tests.testbed.tools import build_output

if TYPE_CHECKING:
    from tests.testbed.realnode import RealNode

ENV = "AK_KUBE_ROUTER"
# What the testbed's API servers serve Services from (components.apiserver).
SERVICE_RANGE = "10.0.0.0/24"
# Logged at --v=1 once a sync has written its rules (a failed sync never gets there).
SYNCED = "Restoring IPv4 iptables rules took"
# What the network-policy controller names its filter chains and its ipsets;
# kube-proxy's chains (KUBE-SERVICES, KUBE-SVC-..., KUBE-FORWARD...) match none.
CHAINS = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
IPSETS = ("KUBE-SRC-", "KUBE-DST-", "kube-router-", "TMP-")


def cleanup_commands(rules: str) -> list[list[str]]:
    """The iptables commands that remove the controller's chains from the filter
    table that ``iptables -S`` printed as ``rules``: first the jumps into them
    from other chains, then their rules, then the chains."""
    ours: list[str] = []
    jumps: list[list[str]] = []
    for line in rules.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "-N" and words[1].startswith(CHAINS):
            ours.append(words[1])
        elif len(words) > 2 and words[0] == "-A" and not words[1].startswith(CHAINS):
            target = words[words.index("-j") + 1] if "-j" in words else ""
            if target.startswith(CHAINS):
                jumps.append(["-D", *words[1:]])
    return [*jumps, *(["-F", c] for c in ours), *(["-X", c] for c in ours)]


def cleanup() -> None:
    """Remove the network-policy controller's chains and ipsets from this network namespace."""
    saved = subprocess.run(
        ["iptables", "-t", "filter", "-S"], capture_output=True, text=True, check=True, timeout=30
    )
    for args in cleanup_commands(saved.stdout):
        subprocess.run(["iptables", "-t", "filter", *args], capture_output=True, check=False)
    names = subprocess.run(
        ["ipset", "list", "-n"], capture_output=True, text=True, check=False, timeout=30
    )
    for name in names.stdout.split():
        if name.removeprefix("inet6:").startswith(IPSETS):
            subprocess.run(["ipset", "destroy", name], capture_output=True, check=False)


class KubeRouterUnavailable(RuntimeError):
    pass


def find_binary() -> Path:
    """kube-router as ``build/kube-router.sh`` builds it (or finds it cached);
    ``$AK_KUBE_ROUTER`` names its directory and skips the script."""
    return Path(build_output("kube-router.sh", ENV)) / "kube-router"


class KubeRouter:
    """kube-router's network-policy controller for ``node``; ``start``/``stop``."""

    running: ClassVar[KubeRouter | None] = None

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
        if not sandbox.inside():
            # Outside it, its rules would land in the machine's own tables.
            raise KubeRouterUnavailable("kube-router runs only inside the testbed sandbox")
        if shutil.which("ipset") is None:
            raise KubeRouterUnavailable("ipset is not installed (build/node.sh installs it)")
        if KubeRouter.running is not None:
            raise KubeRouterUnavailable(
                f"kube-router already enforces for {KubeRouter.running.node.name}: "
                "one per network namespace (their chains share names)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        KubeRouter.running = self
        try:
            self.proc = Proc(f"kube-router-{self.node.name}", self.argv(), self.log)
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
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
            cleanup()
        if KubeRouter.running is self:
            KubeRouter.running = None

    def describe(self) -> str:
        return f"kube-router for {self.node.name}: log {self.log}"
