"""Real Kubernetes control planes on loopback, for tests, the benchmark and the demo.

A cluster is etcd + kube-apiserver + kube-controller-manager + kube-scheduler
built from the pinned k8s.io/kubernetes module (``build/tools.sh``), with
authentication and authorization on as in production (Node,RBAC,
NodeRestriction, TokenRequest, CSR signing). A "remote" cluster adds kwok,
which simulates nodes and the containers on them. Several clusters can share
one etcd under different prefixes.

The binaries are found by ``tools``, the shared etcd is ``etcd``, the command
lines are ``components``; ``testbed.Testbed`` starts clusters on demand.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.testbed import components, kwok, sandbox
from tests.testbed.etcd import Etcd
from tests.testbed.kwok import KWOK_ANNOTATION
from tests.testbed.pki import CertificateAuthority, CertPair, write_service_account_keys
from tests.testbed.procs import Proc, free_port, wait_for
from tests.testbed.realnode import PLACEMENT, RealNode
from tests.testbed.tools import Tools


def kubeconfig_dict(
    server: str, ca: Path, cert: CertPair | None, token: str | None = None
) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if cert is not None:
        user = {"client-certificate": str(cert.cert), "client-key": str(cert.key)}
    if token is not None:
        user["token"] = token
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }


@dataclass
class Cluster:
    """One control plane. Use ``start()``/``stop()`` or the context manager."""

    name: str
    tools: Tools
    etcd: Etcd
    root: Path
    kwok_nodes: int = 0
    kcm_args: list[str] = field(default_factory=list)
    apiserver_args: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    real_nodes: list[RealNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.root / self.name
        self.pki_dir = self.dir / "pki"
        self.logs = self.dir / "logs"
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.prefix = f"/{self.name}-{uuid.uuid4().hex[:8]}"
        self.kwok_port = 0

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Cluster:
        try:
            self._pki()
            self._apiserver()
            self._controllers()
            if self.kwok_nodes:
                self._kwok()
            self._wait_default_namespace()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for n in reversed(self.real_nodes):
            n.stop()
        self.real_nodes.clear()
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()

    def add_real_node(
        self,
        name: str,
        *,
        taint: bool = True,
        placement: str = PLACEMENT,
        network_policy: bool = False,
    ) -> RealNode:
        """A kubelet + containerd node (inside the sandbox only; see realnode.py),
        labelled and tainted ``ak-testbed/real-node=<placement>``; with
        ``network_policy``, kube-router enforces NetworkPolicies for its pods."""
        node = RealNode(self, name, taint=taint, placement=placement, network_policy=network_policy)
        self.real_nodes.append(node)
        return node.start()

    def component(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def restart(self, name: str) -> None:
        """Start a stopped (or running) component again with the same flags and ports."""
        i = next(i for i, p in enumerate(self.procs) if p.name == name)
        old = self.procs[i]
        old.stop()
        self.procs[i] = Proc(old.name, old.argv, old.log)
        if name == "kube-apiserver":
            wait_for("kube-apiserver /readyz", self._ready, 90, self.procs)

    # -- PKI and kubeconfigs -----------------------------------------------------
    def _pki(self) -> None:
        self.ca = CertificateAuthority(self.pki_dir, f"{self.name}-ca")
        self.serving = self.ca.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            dns=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            # 192.0.2.1: the sandbox's host address, by which pods on real nodes
            # reach every API server (tests.testbed.sandbox).
            ips=("127.0.0.1", "10.0.0.1", sandbox.HOST_IP),
        )
        self.admin = self.ca.issue("admin", "admin", orgs=("system:masters",), client=True)
        self.kubelet_client = self.ca.issue(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            orgs=("system:masters",),
            client=True,
        )
        self.sa = write_service_account_keys(self.pki_dir)
        # The aggregation layer, as kubeadm sets it up: the API server proxies
        # to extension API servers (metrics-server) with a client certificate
        # of a CA of its own, the front proxy's, and the user in headers.
        self.front_proxy_ca = CertificateAuthority(self.pki_dir / "front-proxy", "front-proxy-ca")
        self.front_proxy_client = self.front_proxy_ca.issue(
            "front-proxy-client", "front-proxy-client", client=True
        )
        self.kubeconfig = self.write_kubeconfig("admin", self.admin)

    def write_kubeconfig(self, stem: str, cert: CertPair | None, token: str | None = None) -> Path:
        path = self.dir / f"{stem}.kubeconfig"
        path.write_text(json.dumps(kubeconfig_dict(self.server, self.ca.pair.cert, cert, token)))
        return path

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for an arbitrary identity, by client certificate from this CA."""
        stem = user.replace(":", "_")
        return self.write_kubeconfig(stem, self.ca.issue(stem, user, orgs=groups, client=True))

    def node_kubeconfig(self, node: str) -> Path:
        """A kubelet's identity: system:node:<node> in system:nodes."""
        return self.user_kubeconfig(f"system:node:{node}", ("system:nodes",))

    # -- components --------------------------------------------------------------
    def _apiserver(self) -> None:
        argv = components.apiserver(self)
        self.procs.append(Proc("kube-apiserver", argv, self.logs / "kube-apiserver.log"))
        wait_for("kube-apiserver /readyz", self._ready, 90, self.procs)

    def _ready(self) -> bool:
        with self.http() as c:
            return c.get("/readyz").status_code == 200

    def http(self, timeout: float = 10) -> httpx.Client:
        """An admin HTTP client for the harness's own checks."""
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.ca.pair.cert))
        ctx.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return httpx.Client(base_url=self.server, verify=ctx, timeout=timeout)

    def _controllers(self) -> None:
        kcm = self.user_kubeconfig("system:kube-controller-manager")
        sched = self.user_kubeconfig("system:kube-scheduler")
        self.procs.append(
            Proc(
                "kube-controller-manager",
                components.controller_manager(self, kcm),
                self.logs / "kube-controller-manager.log",
            )
        )
        scheduler = components.scheduler(self, sched)
        self.procs.append(Proc("kube-scheduler", scheduler, self.logs / "kube-scheduler.log"))

    def _kwok(self) -> None:
        self.kwok_port = free_port()
        files = self.dir / "kwok"
        files.mkdir(exist_ok=True)
        logs = files / "container.log"
        # kwok reads container logs in the CRI file format, like a kubelet.
        logs.write_text(
            "".join(
                f"2026-01-01T00:00:{i:02d}.000000000Z stdout F kwok log line {i}\n"
                for i in range(1, 11)
            )
        )
        prev = files / "previous.log"
        prev.write_text("2025-12-31T00:00:00.000000000Z stdout F previous container log line\n")
        serving = self.ca.issue("kwok", "kwok", server=True, dns=("localhost",), ips=("127.0.0.1",))
        config = files / "kwok.yaml"
        kwok.write_config(config, kwok.stages() + kwok.simulations(logs, prev, files))
        self.kwok_logs_file = logs
        for i in range(self.kwok_nodes):
            self.add_kwok_node(f"kwok-node-{i}")
        self.procs.append(
            Proc("kwok", components.kwok(self, serving, config), self.logs / "kwok.log")
        )
        wait_for("kwok nodes Ready", self._kwok_nodes_ready, 60, self.procs)

    def add_kwok_node(self, name: str, labels: dict[str, str] | None = None) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {KWOK_ANNOTATION: "fake"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": name, **(labels or {})},
            },
        }
        with self.http() as c:
            r = c.post("/api/v1/nodes", json=node)
            if r.status_code not in (201, 409):
                raise RuntimeError(f"creating node {name}: {r.status_code} {r.text}")

    def _kwok_nodes_ready(self) -> bool:
        with self.http() as c:
            nodes = c.get("/api/v1/nodes", params={"labelSelector": "type=kwok"}).json()["items"]
        ready = [
            n
            for n in nodes
            if any(
                cond["type"] == "Ready" and cond["status"] == "True"
                for cond in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.kwok_nodes

    def _wait_default_namespace(self) -> None:
        def ready() -> bool:
            with self.http() as c:
                sa = c.get("/api/v1/namespaces/default/serviceaccounts/default")
                ca = c.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
                return sa.status_code == 200 and ca.status_code == 200

        wait_for("default ServiceAccount and kube-root-ca.crt", ready, 60, self.procs)

    # -- conveniences for tests --------------------------------------------------
    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        kubeconfig: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.tools("kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def apply(
        self, manifest: dict[str, Any] | list[dict[str, Any]], namespace: str | None = None
    ) -> None:
        docs = manifest if isinstance(manifest, list) else [manifest]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=body)

    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        with self.http() as c:
            r = c.get(path, params=params)
            r.raise_for_status()
            out: dict[str, Any] = r.json()
            return out

    def describe(self) -> str:
        """Where to look when a test fails."""
        nodes = "".join(f"\n  {n.describe()}" for n in self.real_nodes)
        return (
            f"cluster {self.name}: {self.server}, kubeconfig {self.kubeconfig}, logs {self.logs}"
            + nodes
        )
