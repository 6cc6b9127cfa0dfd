"""The testbed's real NetworkPolicy enforcement: kube-router on a remote real node.

``remote_netpol_node`` runs kube-router's network-policy controller
(``tests.testbed.kuberouter``) for its pods. Here, without AK, two namespaces of
the remote cluster hold pods on that node, and connections between them follow
the NetworkPolicies as a production cluster's network plugin makes them:
open without any policy, shut by a deny-all ingress policy, reopened for the
namespace a ``namespaceSelector`` names, and inside the guarded namespace only
once a policy admits it. Without an enforcer the first refusal never comes and
the test fails. Then the same with AK in between (``ak_netpol``): AK's pods
land on that node, and a policy in their remote namespace holds for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.cluster.realutil import container, kubectl, remote_pod, run, shell_pod
from tests.cluster.util import Obj, wait_until
from tests.conftest import AKNode
from tests.testbed import images, realnode
from tests.testbed.cluster import Cluster

PORT = 8080
TENANT = "netpol-test/tenant"
SERVE = ["/bin/webhook", "http", f":{PORT}"]
READY = {"tcpSocket": {"port": PORT}, "periodSeconds": 1}


@dataclass
class Namespaces:
    a: str
    b: str


@pytest.fixture
def namespaces(remote_cluster: Cluster) -> Iterator[Namespaces]:
    """Namespaces ``a`` (labelled ``TENANT=<a>``) and ``b``, deleted afterwards."""
    suffix = uuid.uuid4().hex[:5]
    ns = Namespaces(f"np-a-{suffix}", f"np-b-{suffix}")
    remote_cluster.apply(
        [
            _namespace(ns.a, {TENANT: ns.a}),
            _namespace(ns.b, {}),
        ]
    )
    try:
        yield ns
    finally:
        for name in (ns.a, ns.b):
            remote_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _namespace(name: str, labels: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _pod(node: realnode.RealNode, name: str, command: list[str], **extra: object) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node.name,
            "tolerations": [realnode.toleration_for(node.placement)],
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": images.WEBHOOK,
                    "imagePullPolicy": "Never",
                    "command": command,
                    **extra,
                }
            ],
        },
    }


def _policy(name: str, ingress: list[Obj]) -> Obj:
    """An ingress policy over every pod of its namespace; no rules = deny all."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def _probe(cluster: Cluster, namespace: str, url: str) -> Callable[[], bool]:
    """Whether pod ``client`` of ``namespace`` gets the server's answer at ``url``."""

    def reaches() -> bool:
        # webhook's client gives up after 5 s (busybox's wget -T would crash);
        # kube-router rejects, so a refusal comes at once.
        done = kubectl(cluster, "-n", namespace, "exec", "client", "--",
                       "/bin/webhook", "get", url, timeout=30)  # fmt: skip
        return done.returncode == 0 and done.stdout.startswith("hello from server")

    return reaches


def _opens(what: str, reaches: Callable[[], bool]) -> None:
    wait_until(f"{what} connects", reaches, 60, 1)


def _shuts(what: str, reaches: Callable[[], bool]) -> None:
    wait_until(f"{what} refused", lambda: not reaches(), 60, 1)


def _ready_ip(remote: Cluster, namespace: str, name: str) -> str:
    def ready() -> str | None:
        p = remote.get_json(f"/api/v1/namespaces/{namespace}/pods/{name}")
        conds = p.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            return str(p["status"]["podIP"])
        return None

    return wait_until(f"pod {namespace}/{name} Ready", ready, 90)


def test_network_policies_are_enforced_on_the_real_node(
    remote_cluster: Cluster, remote_netpol_node: realnode.RealNode, namespaces: Namespaces
) -> None:
    node, a, b = remote_netpol_node, namespaces.a, namespaces.b
    server = _pod(node, "server", SERVE, readinessProbe=READY)
    remote_cluster.apply([server, _pod(node, "client", ["sleep", "3600"])], b)
    remote_cluster.apply(_pod(node, "client", ["sleep", "3600"]), a)
    ip = _ready_ip(remote_cluster, b, "server")
    assert _ready_ip(remote_cluster, a, "client") != ip
    _ready_ip(remote_cluster, b, "client")
    url = f"http://{ip}:{PORT}/"
    probes = {ns: _probe(remote_cluster, ns, url) for ns in (a, b)}

    def reaches(namespace: str) -> bool:
        return probes[namespace]()

    def opens(namespace: str) -> None:
        _opens(f"{namespace} -> {b}/server", probes[namespace])

    def shuts(namespace: str) -> None:
        _shuts(f"{namespace} -> {b}/server", probes[namespace])

    # No policy: every pod is reachable, from its own namespace and others.
    opens(a)
    opens(b)

    remote_cluster.apply(_policy("deny-all", []), b)
    shuts(a)
    shuts(b)

    # Policies add up: the namespace the selector names is let in, and only it.
    from_a = {"namespaceSelector": {"matchLabels": {TENANT: a}}}
    remote_cluster.apply(_policy("from-a", [{"from": [from_a]}]), b)
    opens(a)
    assert not reaches(b), f"{b} is let in by a selector for {a}'s label"

    # Inside b, what a policy admits: its own pods (a podSelector alone).
    remote_cluster.apply(_policy("same-namespace", [{"from": [{"podSelector": {}}]}]), b)
    opens(b)
    assert reaches(a)

    # Dropping the allowances shuts both again: the deny-all still holds.
    remote_cluster.kubectl("-n", b, "delete", "networkpolicy", "from-a", "same-namespace")
    shuts(a)
    shuts(b)


def test_ak_pods_on_the_enforcing_node_follow_remote_policies(
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_netpol_node: realnode.RealNode,
    ak_netpol: AKNode,
) -> None:
    node = ak_netpol
    server = shell_pod(node, "server", "", containers=[
        container("c", *SERVE, image=images.WEBHOOK, readinessProbe=READY)])  # fmt: skip
    client = shell_pod(node, "client", "", containers=[
        container("c", "sleep", "3600", image=images.WEBHOOK)])  # fmt: skip
    run(local_cluster, node, server)
    run(local_cluster, node, client)
    there = remote_pod(remote_cluster, node, "server")
    assert there["spec"]["nodeName"] == remote_netpol_node.name
    # Through AK (local exec), to the server's remote address.
    reaches = _probe(local_cluster, node.namespace, f"http://{there['status']['podIP']}:{PORT}/")
    what = f"{node.namespace}/client -> server"
    _opens(what, reaches)

    # A remote deny-all written by hand would add up with AK's default isolation
    # policy (same-node namespaces admitted), so the tenant's own, written
    # locally, is what closes it: AK's copy makes the default step aside.
    local_cluster.apply(_policy("deny-all", []), node.namespace)
    _shuts(what, reaches)
    local_cluster.kubectl("-n", node.namespace, "delete", "networkpolicy", "deny-all")
    _opens(what, reaches)
