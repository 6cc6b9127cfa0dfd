"""East-west on the remote side: workloads on the AK node reach each other's
Services by the names they use in the local cluster.

The remote cluster here has what a real one has: kube-proxy on its real node
(ClusterIPs) and CoreDNS as its cluster DNS (``tests.testbed.clusternet``). A
client Deployment asks a server Deployment's Service by each name form, with
Go's resolver (resolv.conf search list and ndots, as most workloads resolve).
``svc`` works as it is; the namespaced forms need the remote DNS admin's
``rewrite`` from the README, which this test applies and checks word for word.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from tests.cluster.realutil import container, exec_in
from tests.cluster.util import Obj, pods, wait_until
from tests.conftest import AKNode
from tests.testbed import images, realnode
from tests.testbed.cluster import Cluster
from tests.testbed.clusternet import ClusterDNS, KubeProxy


@pytest.fixture(scope="module")
def cluster_dns(remote_real_node: realnode.RealNode) -> Iterator[ClusterDNS]:
    proxy = KubeProxy(remote_real_node).start()
    dns = ClusterDNS(remote_real_node)
    try:
        yield dns.start()
    finally:
        dns.stop()
        proxy.stop()


def _deployment(node: AKNode, name: str, command: list[str], **extra: object) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": extra.pop("replicas", 1),
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node.name},
                    "terminationGracePeriodSeconds": 1,
                    "containers": [container(name, *command, image=images.WEBHOOK, **extra)],
                },
            },
        },
    }


def _ready(local: Cluster, node: AKNode, app: str, count: int) -> list[Obj]:
    def ready() -> list[Obj] | None:
        found = [
            p
            for p in pods(local, node.namespace, f"app={app}")
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions", [])
            )
        ]
        return found if len(found) == count else None

    return wait_until(f"{count} Ready {app} pods", ready, 120)


def rewrite(local_ns: str, remote_ns: str) -> str:
    """The README's rewrite for one local namespace, as the remote admin adds it."""
    return (
        "    rewrite stop {\n"
        f"        name regex ^(.*)\\.{local_ns}\\.svc\\.cluster\\.local\\.$ "
        f"{{1}}.{remote_ns}.svc.cluster.local.\n"
        f"        answer name ^(.*)\\.{remote_ns}\\.svc\\.cluster\\.local\\.$ "
        f"{{1}}.{local_ns}.svc.cluster.local.\n"
        "    }\n"
    )


def test_workloads_reach_a_service_by_every_name_form(
    local_cluster: Cluster, ak_real: AKNode, cluster_dns: ClusterDNS
) -> None:
    node = ak_real
    ns = node.namespace
    local_cluster.apply(
        [
            _deployment(
                node,
                "web",
                ["/bin/webhook", "http", ":8080"],
                replicas=2,
                readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            ),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
            _deployment(node, "client", ["sleep", "3600"]),
        ],
        ns,
    )
    servers = {f"hello from {p['metadata']['name']}" for p in _ready(local_cluster, node, "web", 2)}
    client = _ready(local_cluster, node, "client", 1)[0]["metadata"]["name"]

    def fetch(host: str) -> str | None:
        done = exec_in(local_cluster, node, client, "/bin/webhook", "get", f"http://{host}/")
        return done.stdout.strip() if done.returncode == 0 else None

    answers: set[str] = set()

    def both_answered() -> bool:
        answers.add(fetch("web") or "")
        return answers >= servers

    # Both replicas answer, through the remote ClusterIP's load balancing.
    wait_until("both servers by the Service's short name", both_answered, 60)

    namespaced = (f"web.{ns}", f"web.{ns}.svc", f"web.{ns}.svc.cluster.local")
    for name in namespaced:
        assert fetch(name) is None, f"{name} resolved without the admin's rewrite"

    cluster_dns.configure(rewrite(ns, node.remote_namespace))
    try:
        for name in namespaced:
            got = wait_until(f"{name} with the rewrite", partial(fetch, name), 60)
            assert got in servers
    finally:
        cluster_dns.configure()
