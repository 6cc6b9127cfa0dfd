"""Service networking for a cluster with a real node: kube-proxy and CoreDNS.

A real cluster's pods reach Services by ClusterIP (kube-proxy on every node)
and by name (the cluster DNS). The real-node testbed has neither by default;
tests of east-west traffic start both, for the real node's cluster, inside the
sandbox (``build/node.sh`` builds them):

* ``KubeProxy``: kube-proxy in iptables mode for the node, in the sandbox's
  network namespace. ``masqueradeAll``: the node's bridge does not pass
  bridged frames through iptables (that would need the machine's
  ``br_netfilter`` module), so a pod reaching a Service backed by a pod of the
  same bridge must see the reply come back through the host; SNAT makes it.
  Every machine-wide conntrack setting is left alone (0 = don't set). Its
  rules are removed with ``kube-proxy --cleanup`` when it stops.
* ``ClusterDNS``: CoreDNS with the ``kubernetes`` plugin on the node's own
  address, port 53, which the kubelet gives pods as their nameserver
  (``clusterDNS``). ``extra`` lines go into its server block before the
  ``kubernetes`` plugin (a ``rewrite``, say); ``reload`` picks up a changed
  Corefile within seconds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.testbed.procs import Proc, free_port, wait_for

if TYPE_CHECKING:
    from tests.testbed.realnode import RealNode

CLUSTER_DOMAIN = "cluster.local"


class KubeProxy:
    def __init__(self, node: RealNode) -> None:
        self.node = node
        self.binary = node.tools.kube_proxy
        self.dir = node.dir / "kube-proxy"
        self.proc: Proc | None = None

    def _config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.node.cluster.kubeconfig)},
            "hostnameOverride": self.node.name,
            "bindAddress": self.node.ip,
            "mode": "iptables",
            "iptables": {"masqueradeAll": True, "syncPeriod": "5s", "minSyncPeriod": "0s"},
            "clusterCIDR": "10.244.0.0/16",
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "oomScoreAdj": 0,
        }
        path = self.dir / "config.json"
        path.write_text(json.dumps(config))
        return path

    def start(self, attempts: int = 3, patience: float = 20) -> KubeProxy:
        """Start kube-proxy and wait until its rules are in place.

        kube-router shares the netns and rewrites the filter table with
        iptables-restore; a chain kube-proxy creates in between is lost, its
        first sync fails ("Chain 'KUBE-EXTERNAL-SERVICES' does not exist"), and
        kube-proxy v1.36 may then not retry until a Service changes (seen in CI:
        ten minutes). So a stalled start is restarted, as a kubelet would
        restart the static pod, and a failed start leaves no process behind.
        """
        config = self._config()
        log = self.dir / "kube-proxy.log"
        for attempt in range(1, attempts + 1):
            self.proc = Proc(
                f"kube-proxy-{self.node.name}",
                [str(self.binary), f"--config={config}", "--v=2"],
                log,
            )
            try:
                # The nat KUBE-SERVICES chain is written by the iptables-restore
                # of a successful sync only ("SyncProxyRules complete" is also
                # logged after a failed one).
                wait_for(
                    "kube-proxy's first sync",
                    lambda: _has_chain("KUBE-SERVICES"),
                    patience,
                    [self.proc],
                )
                return self
            except BaseException as e:
                self.proc.stop()
                self.proc = None
                # Only a stall is retried; anything else (it died, Ctrl-C) ends here.
                if attempt == attempts or not isinstance(e, TimeoutError):
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
            subprocess.run(
                [str(self.binary), "--cleanup"], capture_output=True, check=False, timeout=60
            )


def _has_chain(chain: str) -> bool:
    done = subprocess.run(
        ["iptables", "-t", "nat", "-S", chain], capture_output=True, check=False, timeout=10
    )
    return done.returncode == 0


def corefile(bind: str, kubeconfig: Path, extra: str = "") -> str:
    return f""".:53 {{
    bind {bind}
    errors
    log
    reload 2s
{extra}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        fallthrough in-addr.arpa ip6.arpa
    }}
}}
"""


class ClusterDNS:
    def __init__(self, node: RealNode) -> None:
        self.node = node
        self.dir = node.dir / "coredns"
        self.path = self.dir / "Corefile"
        self.proc: Proc | None = None

    def configure(self, extra: str = "") -> None:
        """Write the Corefile; a running server reloads it within ``reload``'s 2 s."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path.write_text(corefile(self.node.ip, self.node.cluster.kubeconfig, extra))

    def start(self, extra: str = "") -> ClusterDNS:
        self.configure(extra)
        log = self.dir / "coredns.log"
        self.proc = Proc(
            f"coredns-{self.node.name}",
            [str(self.node.tools.coredns), "-conf", str(self.path)],
            log,
            cwd=self.dir,
        )
        wait_for(
            "CoreDNS serving",
            lambda: "CoreDNS-" in log.read_text(errors="replace"),
            60,
            [self.proc],
        )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
