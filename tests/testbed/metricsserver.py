"""metrics-server (``build/metrics-server.sh``) serving a testbed cluster's metrics API.

Set up as its manifests set it up, except that it runs as a process in the
sandbox instead of a pod: an identity of its own (a client certificate of the
cluster's CA) with the RBAC its manifests grant, a serving certificate for the
sandbox's address, and the APIService ``v1beta1.metrics.k8s.io`` pointing at a
Service without selector whose endpoints hold that address (the local API
server, with ``--enable-aggregator-routing``, proxies to the endpoint, and
signs its requests with the front proxy's certificate). It scrapes each node's
kubelet port at its InternalIP, checking the certificate against the cluster's
CA, so `kubectl top` and HorizontalPodAutoscalers work as on a real cluster.
``stop`` removes the APIService too: an aggregated API that does not answer
breaks discovery, and with it namespace deletion, for everyone after.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.testbed import sandbox
from tests.testbed.cluster import Cluster
from tests.testbed.procs import Proc, free_port, wait_for

NAME = "metrics-server"
NAMESPACE = "kube-system"
USER = "system:metrics-server"
APISERVICE = "v1beta1.metrics.k8s.io"


def _manifests(cluster: Cluster, port: int, address: str) -> list[dict[str, Any]]:
    user = [{"kind": "User", "name": USER, "apiGroup": "rbac.authorization.k8s.io"}]
    meta = {"name": NAME, "namespace": NAMESPACE}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": USER},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {
                    "apiGroups": [""],
                    "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": USER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": USER,
            },
            "subjects": user,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{NAME}:system:auth-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": user,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{NAME}-auth-reader", "namespace": NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": user,
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {**meta, "labels": {"kubernetes.io/service-name": NAME}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "service": {"name": NAME, "namespace": NAMESPACE, "port": 443},
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "caBundle": base64.b64encode(cluster.ca.pem).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


class MetricsServer:
    """One metrics-server for ``cluster``; ``start``/``stop`` or a context manager."""

    def __init__(
        self,
        cluster: Cluster,
        binary: Path,
        *,
        resolution: str = "10s",
        node_selector: str = "",
        address: str = sandbox.HOST_IP,
    ) -> None:
        self.cluster = cluster
        self.binary = binary
        self.resolution = resolution
        self.node_selector = node_selector
        self.address = address
        self.port = free_port()
        self.log = cluster.logs / "metrics-server.log"
        self.proc: Proc | None = None

    def argv(self) -> list[str]:
        c = self.cluster
        serving = c.ca.issue(
            "metrics-server-serving",
            NAME,
            server=True,
            dns=(f"{NAME}.{NAMESPACE}.svc",),
            ips=(self.address,),
        )
        kubeconfig = c.user_kubeconfig(USER)
        return [
            str(self.binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={self.address}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--cert-dir={c.dir / 'metrics-server'}",
            f"--kubelet-certificate-authority={c.ca.pair.cert}",
            "--kubelet-preferred-address-types=InternalIP",
            "--kubelet-use-node-status-port",
            "--kubelet-request-timeout=5s",
            f"--metric-resolution={self.resolution}",
            *([f"--node-selector={self.node_selector}"] if self.node_selector else []),
            "--v=1",
        ]

    def start(self) -> MetricsServer:
        self.cluster.apply(_manifests(self.cluster, self.port, self.address))
        self.proc = Proc(NAME, self.argv(), self.log)
        try:
            wait_for(f"APIService {APISERVICE} Available", self._available, 60, [self.proc])
        except BaseException:
            self.stop()
            raise
        return self

    def _available(self) -> bool:
        got = self.cluster.get_json(f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}")
        conditions = got.get("status", {}).get("conditions", [])
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

    def stop(self) -> None:
        self.cluster.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found", check=False)
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        return f"metrics-server on {self.address}:{self.port}: log {self.log}"
