"""Network isolation end to end: two local clusters on one remote cluster whose
real node enforces NetworkPolicies (kube-router's network-policy controller,
the testbed's ``remote_netpol_node``).

B's pod cannot reach A's pod by its remote IP (A's namespaces' default
isolation); A's pods reach each other, across A's own namespaces too; a local
deny-all in A stops A's own traffic on the remote side, and allow rules reopen
it for what they name; ``kubectl logs``/``exec`` still work through AK.

The enforcing node is the testbed's kube-router fixture (``ak_netpol``,
``ak_on_real_node`` with ``placement=NETPOL``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ak.core.names import remote_namespace
from ak.testbed import images
from ak.testbed.cluster import Cluster
from tests.cluster.realutil import container, kubectl, shell_pod
from tests.cluster.util import Obj, wait_until
from tests.conftest import NETPOL, AKNode, ClusterFactory, ak_on_real_node

PORT = 8080


def _server(node: AKNode) -> Obj:
    return shell_pod(
        node,
        "server",
        "",
        containers=[
            container(
                "c",
                "/bin/webhook",
                "http",
                f":{PORT}",
                image=images.WEBHOOK,
                readinessProbe={"tcpSocket": {"port": PORT}, "periodSeconds": 1},
            )
        ],
        terminationGracePeriodSeconds=1,
    )


def _client(node: AKNode, name: str = "client") -> Obj:
    return shell_pod(
        node,
        name,
        "",
        containers=[container("c", "sleep", "3600", image=images.WEBHOOK)],
        terminationGracePeriodSeconds=1,
    )


def _policy(name: str, ingress: list[Obj]) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _ready_ip(remote: Cluster, rns: str, name: str) -> str:
    def ready() -> str | None:
        p = remote.get_json(f"/api/v1/namespaces/{rns}/pods/{name}")
        conds = p.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            return str(p["status"]["podIP"])
        return None

    return wait_until(f"remote pod {rns}/{name} Ready", ready, 120)


@pytest.fixture
def second_ak(
    local_cluster: Cluster, remote_cluster: Cluster, cluster_factory: ClusterFactory
) -> Iterator[AKNode]:
    """Tenant B: another local cluster, its AK's pods on the same enforcing node."""
    second = cluster_factory("local-b")
    with ak_on_real_node(second, remote_cluster, "nb", placement=NETPOL) as node:
        yield node


def test_tenants_are_isolated_and_their_policies_hold_remotely(
    ak_netpol: AKNode,
    second_ak: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
) -> None:
    a, b = ak_netpol, second_ak
    ns, rns = a.namespace, a.remote_namespace
    other_ns = f"{ns}-2"  # A's second namespace
    local_cluster.kubectl("create", "namespace", other_ns)
    try:
        local_cluster.apply([_server(a), _client(a)], ns)
        local_cluster.apply(_client(a), other_ns)
        b.ak.local.apply(_client(b), b.namespace)
        ip = _ready_ip(remote_cluster, rns, "server")
        clients = {
            "A": (rns, "client"),
            "A's other namespace": (remote_namespace(a.name, other_ns), "client"),
            "B": (b.remote_namespace, "client"),
        }
        for where, name in clients.values():
            _ready_ip(remote_cluster, where, name)
        url = f"http://{ip}:{PORT}/"

        def reaches(who: str) -> bool:
            where, name = clients[who]
            done = kubectl(remote_cluster, "-n", where, "exec", name, "--",
                           "/bin/webhook", "get", url, timeout=30)  # fmt: skip
            return done.returncode == 0 and done.stdout.startswith("hello from server")

        def opens(who: str) -> None:
            wait_until(f"{who} -> A's server connects", lambda: reaches(who), 90, 1)

        def shuts(who: str) -> None:
            wait_until(f"{who} -> A's server refused", lambda: not reaches(who), 90, 1)

        # The default: A's own namespaces in, B out.
        opens("A")
        opens("A's other namespace")
        assert not reaches("B"), "B reached A's pod by its remote IP"

        # A's deny-all (local) holds remotely, for A's own pods too.
        local_cluster.apply(_policy("deny", []), ns)
        shuts("A")
        shuts("A's other namespace")

        # An allow rule reopens what it names, and only that.
        same_ns = {"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}
        local_cluster.apply(_policy("from-client", [same_ns]), ns)
        opens("A")
        assert not reaches("A's other namespace")
        by_name = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": other_ns}}}
        local_cluster.apply(_policy("from-other", [{"from": [by_name]}]), ns)
        opens("A's other namespace")
        # "From every namespace" is every namespace of A's cluster, never B.
        local_cluster.apply(_policy("from-all", [{"from": [{"namespaceSelector": {}}]}]), ns)
        opens("A")
        assert not reaches("B"), "a namespaceSelector {} of A let B in"

        # AK's own paths do not go through the pod network.
        logs = kubectl(local_cluster, "-n", ns, "logs", "server", timeout=60)
        assert logs.returncode == 0, logs.stderr
        done = kubectl(local_cluster, "-n", ns, "exec", "client", "--",
                       "/bin/webhook", "get", url, timeout=60)  # fmt: skip
        assert done.returncode == 0 and done.stdout.startswith("hello from server"), done.stderr

        # Policies gone: back to the default (A in, B still out).
        local_cluster.kubectl("delete", "networkpolicy", "--all", "-n", ns)
        opens("A's other namespace")
        assert not reaches("B")
    finally:
        local_cluster.kubectl("delete", "namespace", other_ns, "--wait=false", check=False)
