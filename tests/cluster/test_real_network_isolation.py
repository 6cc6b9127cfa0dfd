"""Network isolation end to end: two local clusters on one remote cluster whose
real node enforces NetworkPolicies (kube-router's network-policy controller,
the testbed's ``remote_netpol_node``).

B's pod cannot reach A's pod by its remote IP nor through A's Service (its
remote ClusterIP, kube-proxy running for the node) while A's own pods can (A's
namespaces' default isolation); A's pods reach each other, across A's own namespaces too; a local
deny-all in A stops A's own traffic on the remote side, and allow rules reopen
it for what they name; ``kubectl logs``/``exec`` still work through AK.

The enforcing node is the testbed's kube-router fixture (``ak_netpol``,
``ak_on_real_node`` with ``placement=NETPOL``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from ak.core.names import remote_namespace
from tests.cluster.realutil import container, get_or_none, kubectl, shell_pod
from tests.cluster.test_kubelet_api import Background
from tests.cluster.util import Obj, wait_until
from tests.conftest import NETPOL, AKNode, ClusterFactory, ak_on_real_node
from tests.testbed import images, realnode
from tests.testbed.cluster import Cluster
from tests.testbed.clusternet import KubeProxy

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


def _port_forward_answers(local: Cluster, namespace: str) -> None:
    argv = ["-n", namespace, "port-forward", "pod/server", f":{PORT}"]
    with Background(local, *argv) as fwd:
        line = wait_until(
            "port-forward listening",
            lambda: next((x for x in fwd.text() if x.startswith("Forwarding from 127")), None),
            30,
        )
        port = int(line.split("->")[0].rsplit(":", 1)[1])
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert r.text.startswith("hello from server"), r.text


def _ready_ip(remote: Cluster, rns: str, name: str) -> str:
    def ready() -> str | None:
        p = remote.get_json(f"/api/v1/namespaces/{rns}/pods/{name}")
        conds = p.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            return str(p["status"]["podIP"])
        return None

    return wait_until(f"remote pod {rns}/{name} Ready", ready, 120)


@pytest.fixture(scope="module")
def netpol_kube_proxy(remote_netpol_node: realnode.RealNode) -> Iterator[KubeProxy]:
    """kube-proxy for the enforcing node, as a real remote runs it: Services by
    ClusterIP. Module-scoped like test_real_east_west's (one kube-proxy per
    sandbox: both stop when their module ends, and modules do not overlap)."""
    proxy = KubeProxy(remote_netpol_node).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "server"},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": PORT}]},
    }


def _cluster_ip(remote: Cluster, rns: str) -> str:
    def reflected() -> str | None:
        svc = get_or_none(remote, f"/api/v1/namespaces/{rns}/services/server")
        return (svc or {}).get("spec", {}).get("clusterIP") or None

    return wait_until(f"A's Service reflected into {rns}", reflected, 60)


def _filter_forward() -> str:
    done = subprocess.run(
        ["iptables", "-S", "FORWARD"], check=False, capture_output=True, text=True, timeout=30
    )
    return done.stdout


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
    netpol_kube_proxy: KubeProxy,
) -> None:
    a, b = ak_netpol, second_ak
    ns, rns = a.namespace, a.remote_namespace
    other_ns = f"{ns}-2"  # A's second namespace
    local_cluster.kubectl("create", "namespace", other_ns)
    try:
        local_cluster.apply([_server(a), _client(a), _service()], ns)
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
        service_url = f"http://{_cluster_ip(remote_cluster, rns)}/"

        def reaches(who: str, to: str = url) -> bool:
            where, name = clients[who]
            done = kubectl(remote_cluster, "-n", where, "exec", name, "--",
                           "/bin/webhook", "get", to, timeout=30)  # fmt: skip
            return done.returncode == 0 and done.stdout.startswith("hello from server")

        def opens(who: str, to: str = url) -> None:
            wait_until(f"{who} -> A's server ({to}) connects", lambda: reaches(who, to), 90, 1)

        def shuts(who: str) -> None:
            wait_until(f"{who} -> A's server refused", lambda: not reaches(who), 90, 1)

        # The default: A's own namespaces in, B out.
        opens("A")
        opens("A's other namespace")
        assert not reaches("B"), "B reached A's pod by its remote IP"
        # Through A's Service: kube-proxy DNATs the ClusterIP to A's pod before
        # the filter table, where kube-router judges the real client (the SNAT
        # of masqueradeAll comes after, in POSTROUTING).
        opens("A", service_url)
        opens("A's other namespace", service_url)
        assert not reaches("B", service_url), (
            f"B reached A's pod through its Service\n{_filter_forward()}"
        )

        # A's deny-all (local) holds remotely, for A's own pods too.
        local_cluster.apply(_policy("deny", []), ns)
        shuts("A")
        shuts("A's other namespace")
        # kubectl port-forward enters the pod through its remote kubelet, not the
        # pod network: the tenant's deny-all does not stop it.
        _port_forward_answers(local_cluster, ns)

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
