"""Run ``ak run`` as a real process between two testbed clusters."""

from __future__ import annotations

import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.testbed import realnode, sandbox
from tests.testbed.cluster import Cluster
from tests.testbed.procs import Proc, free_port
from tests.testbed.tools import REPO

LOCAL_NETWORK_POLICY_RBAC = REPO / "packaging" / "local-network-policies.yaml"
LOCAL_STORAGE_RBAC = REPO / "packaging" / "local-storage.yaml"

_COLLECTIONS = {
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "StorageClass": "/apis/storage.k8s.io/v1/storageclasses",
}


def grant_local(local: Cluster, node_name: str, manifest: Path) -> None:
    """A packaging manifest applied for this node as the docs say (NODE_NAME replaced)."""
    text = manifest.read_text().replace("NODE_NAME", node_name)
    with local.http() as c:
        for doc in yaml.safe_load_all(text):
            r = c.post(_COLLECTIONS[doc["kind"]], json=doc)
            if r.status_code != 409:  # ClusterRoles and classes are shared by every node
                r.raise_for_status()


def grant_network_policy_reads(local: Cluster, node_name: str) -> None:
    """What a kubelet identity lacks for the tenant's NetworkPolicies, granted as
    the docs say: ``packaging/local-network-policies.yaml`` for this node."""
    grant_local(local, node_name, LOCAL_NETWORK_POLICY_RBAC)


def real_node_args(local: Cluster, placement: str = realnode.PLACEMENT) -> list[str]:
    """AK's flags for pods in real containers on a remote real node
    (``tests.testbed.realnode``) labelled ``placement``: placed there by
    ``[pods.placement]``, and told the sandbox address by which the node's pods
    reach the LOCAL API server."""
    path = local.dir / f"placement-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(
        "[pods.placement]\n"
        f'nodeSelector = {{ "{realnode.LABEL}" = "{placement}" }}\n'
        f'tolerations = [{{ key = "{realnode.LABEL}", operator = "Exists", '
        'effect = "NoSchedule" }]\n'
    )
    return [
        f"--config={path}",
        f"--local-apiserver-host={sandbox.HOST_IP}",
        f"--local-apiserver-port={local.port}",
    ]


class AKProcess:
    """AK with a kubelet's identity on the local cluster (system:node:<name>),
    as it would run on a bastion; the remote identity is the remote admin
    unless ``remote_kubeconfig`` is given.

    The kubelet API serves a certificate the local CA issued directly (CN
    system:node:<name>, O system:nodes, IPs 127.0.0.1 and ``node_ip``), so the
    local API server, which verifies kubelet certificates, reaches it at once;
    with ``serving_cert=False`` AK requests one with a CSR instead.

    ``node_ip`` is the node's InternalIP. The API server's node proxy
    (``/api/v1/nodes/N/proxy/...``) refuses loopback addresses, so tests of that
    path run in a network namespace with a non-loopback address on its ``lo``.
    """

    def __init__(
        self,
        local: Cluster,
        remote: Cluster,
        node_name: str,
        *,
        extra_args: list[str] | None = None,
        remote_kubeconfig: Path | None = None,
        command: list[str] | None = None,
        metrics: bool = False,
        serving_cert: bool = True,
        node_ip: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        grant_network_policies: bool = True,
        grant_storage: bool = True,
    ) -> None:
        self.local = local
        self.remote = remote
        self.node_name = node_name
        self.node_ip = node_ip
        self.local_kubeconfig = local.node_kubeconfig(node_name)
        self.remote_kubeconfig = remote_kubeconfig or remote.kubeconfig
        self.kubelet_port = free_port()
        self.metrics_port = free_port() if metrics else 0
        self.extra_args = extra_args or []
        self.command = command or [sys.executable, "-m", "ak"]
        self.log = local.dir / f"ak-{node_name}.log"
        self.serving_args: list[str] = []
        if serving_cert:
            pair = local.ca.issue(
                f"kubelet-serving-{node_name}",
                f"system:node:{node_name}",
                orgs=("system:nodes",),
                server=True,
                dns=(node_name,),
                ips=tuple(dict.fromkeys(("127.0.0.1", node_ip))),
            )
            self.serving_args = [
                f"--tls-cert-file={pair.cert}",
                f"--tls-private-key-file={pair.key}",
            ]
        self.env = env  # None: this process's environment
        # The local grant beyond the node identity (packaging/local-network-policies.yaml).
        self.grant_network_policies = grant_network_policies
        # ... and packaging/local-storage.yaml, for claims on the remote storage.
        self.grant_storage = grant_storage
        self.proc: Proc | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [
            *self.command,
            "run",
            f"--node-name={self.node_name}",
            f"--local-kubeconfig={self.local_kubeconfig}",
            f"--remote-kubeconfig={self.remote_kubeconfig}",
            f"--kubelet-port={self.kubelet_port}",
            f"--internal-ip={self.node_ip}",
            f"--metrics-port={self.metrics_port}",
            "--log-level=debug",
            f"--client-ca-file={self.local.ca.pair.cert}",
            *self.serving_args,
            *self.extra_args,
        ]

    def start(self) -> AKProcess:
        if self.grant_network_policies and self.starts == 0:
            grant_network_policy_reads(self.local, self.node_name)
        if self.grant_storage and self.starts == 0:
            grant_local(self.local, self.node_name, LOCAL_STORAGE_RBAC)
        self.starts += 1
        with self.log.open("a") as f:
            f.write(f"\n===== start {self.starts} at {time.strftime('%H:%M:%S')} =====\n")
        self.proc = Proc(f"ak-{self.node_name}", self.argv(), self.log, env=self.env)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, as in a crash."""
        if self.proc is not None:
            self.proc.signal(signal.SIGKILL)
            self.proc.popen.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "AK is not running"
        return self.proc.pid

    def node(self) -> dict[str, Any]:
        return self.local.get_json(f"/api/v1/nodes/{self.node_name}")

    def node_ready(self) -> bool:
        try:
            conds = self.node().get("status", {}).get("conditions", [])
        except Exception:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def describe(self) -> str:
        return f"AK node {self.node_name}: log {self.log}"
