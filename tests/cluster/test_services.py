"""Local Services reflected into the remote namespaces, against real control planes and kwok.

The remote cluster's own endpointslice controller fills the copies' EndpointSlices
from the remote pods; kwok gives those pods IPs and a Ready condition.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from ak.core.labels import ANNOTATION_SOURCE_UID, LABEL_NAMESPACE, LABEL_NODE, LABEL_REPLICA
from ak.core.names import remote_namespace
from tests.cluster.util import deployment, events_for, pod, pods, running, wait_until
from tests.conftest import NODE_IP, AKNode, ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]


def service(name: str, selector: dict[str, str] | None, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            **({"selector": selector} if selector else {}),
            "ports": spec.pop("ports", [{"name": "http", "port": 80, "targetPort": 8080}]),
            **spec,
        },
    }


def remote_service(remote: Cluster, rns: str, name: str) -> Obj | None:
    with remote.http() as c:
        r = c.get(f"/api/v1/namespaces/{rns}/services/{name}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    out: Obj = r.json()
    return out


def slice_endpoints(remote: Cluster, rns: str, name: str) -> dict[str, bool]:
    """address -> ready, over the Service's EndpointSlices."""
    items = remote.get_json(
        f"/apis/discovery.k8s.io/v1/namespaces/{rns}/endpointslices",
        {"labelSelector": f"kubernetes.io/service-name={name}"},
    )["items"]
    return {
        address: bool(ep.get("conditions", {}).get("ready"))
        for s in items
        for ep in s.get("endpoints") or []
        for address in ep["addresses"]
    }


def remote_ips(remote: Cluster, rns: str, selector: str) -> set[str]:
    return {p["status"]["podIP"] for p in running(pods(remote, rns, selector))}


def test_service_is_reflected_kept_in_step_and_removed(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply(
        [
            deployment("web", ak_node.name, 2),
            service("web", {"app": "web"}, sessionAffinity="ClientIP"),
            service("np", {"app": "web"}, type="NodePort", externalTrafficPolicy="Local"),
            service("nobody", {"app": "nothing"}),
            service("manual", None),
        ],
        ns,
    )
    wait_until(
        "2 remote pods Running", lambda: len(remote_ips(remote_cluster, rns, "app=web")) == 2
    )
    copy = wait_until("the remote copy", lambda: remote_service(remote_cluster, rns, "web"))
    local_svc = local_cluster.get_json(f"/api/v1/namespaces/{ns}/services/web")
    labels = copy["metadata"]["labels"]
    assert labels[LABEL_NODE] == ak_node.name
    assert labels[LABEL_NAMESPACE] == ns
    assert labels[LABEL_REPLICA] == "true"
    assert copy["metadata"]["annotations"][ANNOTATION_SOURCE_UID] == local_svc["metadata"]["uid"]
    spec = copy["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["selector"] == {"app": "web"}
    assert spec["sessionAffinity"] == "ClientIP"
    assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [("http", 80, 8080)]

    # The remote endpointslice controller lists the remote pods.
    ips = remote_ips(remote_cluster, rns, "app=web")
    wait_until(
        "EndpointSlices listing both remote pods",
        lambda: slice_endpoints(remote_cluster, rns, "web") == dict.fromkeys(ips, True),
    )

    # A remote pod that turns NotReady leaves the ready endpoints.
    first = running(pods(remote_cluster, rns, "app=web"))[0]
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    remote_cluster.kubectl(
        "patch", "pod", "-n", rns, first["metadata"]["name"], "--subresource=status",
        "--type=merge", "-p", json.dumps(not_ready),
    )  # fmt: skip
    wait_until(
        "the NotReady pod's endpoint not ready",
        lambda: slice_endpoints(remote_cluster, rns, "web").get(first["status"]["podIP"]) is False,
    )

    # NodePort is reflected as ClusterIP, with a Warning on the local Service.
    np = wait_until("the NodePort copy", lambda: remote_service(remote_cluster, rns, "np"))
    assert np["spec"]["type"] == "ClusterIP"
    assert not any("nodePort" in p for p in np["spec"]["ports"])
    event = wait_until(
        "a Warning on the NodePort Service",
        lambda: [e for e in events_for(local_cluster, ns, "np") if e["type"] == "Warning"],
    )[0]
    assert event["reason"] == "ServiceNotFullyReflected"
    assert "NodePort" in event["message"]
    assert "externalTrafficPolicy" in event["message"]

    # Ports follow.
    local_cluster.kubectl(
        "patch", "service", "web", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"ports": [{"name": "web", "port": 81, "targetPort": 9090}]}}),
    )  # fmt: skip
    wait_until(
        "the new ports remotely",
        lambda: (
            [
                (p["name"], p["port"], p["targetPort"])
                for p in (remote_service(remote_cluster, rns, "web") or {"spec": {}})["spec"][
                    "ports"
                ]
            ]
            == [("web", 81, 9090)]
        ),
    )

    # A selector that no longer matches the node's pods: the copy goes; back, it returns.
    local_cluster.kubectl(
        "patch", "service", "web", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"selector": {"app": "web", "tier": "x"}}}),
    )  # fmt: skip
    wait_until("copy gone", lambda: remote_service(remote_cluster, rns, "web") is None)
    local_cluster.kubectl(
        "patch", "service", "web", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"selector": {"app": "web", "tier": None}}}),
    )  # fmt: skip
    wait_until("copy back", lambda: remote_service(remote_cluster, rns, "web"))

    # The last matching pod gone: the copy goes.
    local_cluster.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=0")
    wait_until("copies gone", lambda: remote_service(remote_cluster, rns, "web") is None)
    wait_until("NodePort copy gone", lambda: remote_service(remote_cluster, rns, "np") is None)
    local_cluster.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=1")
    wait_until("copy back with a pod", lambda: remote_service(remote_cluster, rns, "web"))

    # The Service deleted: its copy goes.
    local_cluster.kubectl("delete", "service", "web", "-n", ns)
    wait_until(
        "copy of a deleted Service gone", lambda: not remote_service(remote_cluster, rns, "web")
    )

    # Never copied: selecting no pod of the node, or no selector at all.
    assert remote_service(remote_cluster, rns, "nobody") is None
    assert remote_service(remote_cluster, rns, "manual") is None


def test_headless_service_conflict_and_namespace_deletion(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply(
        [pod("db", ak_node.name), service("db", {"app": "db"}, clusterIP="None")], ns
    )
    copy = wait_until("the headless copy", lambda: remote_service(remote_cluster, rns, "db"))
    assert copy["spec"]["clusterIP"] == "None"
    ip = wait_until("the remote pod's IP", lambda: remote_ips(remote_cluster, rns, "app=db"))
    wait_until(
        "the headless Service's endpoints",
        lambda: slice_endpoints(remote_cluster, rns, "db") == dict.fromkeys(ip, True),
    )
    # A remote Service AK did not make keeps its name: left alone, and the user told.
    remote_cluster.apply(service("taken", {"remote": "own"}), rns)
    local_cluster.apply(service("taken", {"app": "db"}), ns)
    event = wait_until(
        "a ServiceConflict Warning",
        lambda: [e for e in events_for(local_cluster, ns, "taken") if e["type"] == "Warning"],
    )[0]
    assert event["reason"] == "ServiceConflict"
    theirs = remote_service(remote_cluster, rns, "taken")
    assert theirs is not None
    assert theirs["spec"]["selector"] == {"remote": "own"}
    assert LABEL_NODE not in (theirs["metadata"].get("labels") or {})

    local_cluster.kubectl("delete", "namespace", ns, "--wait=false")
    wait_until(
        "the copy gone with the namespace",
        lambda: remote_service(remote_cluster, rns, "db") is None,
        timeout=90,
    )


def _copy_selects_own_pod_only(remote: Cluster, rns: str) -> None:
    wait_until(f"the copy in {rns}", lambda: remote_service(remote, rns, "shared"))
    ips = wait_until(f"a Running pod in {rns}", lambda: remote_ips(remote, rns, "tier=shared"))
    assert len(ips) == 1
    wait_until(
        f"{rns}'s endpoints: its own pod only",
        lambda: slice_endpoints(remote, rns, "shared") == dict.fromkeys(ips, True),
    )


def test_two_local_clusters_keep_their_copies_apart(
    ak_node: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    cluster_factory: ClusterFactory,
) -> None:
    """Two local clusters, the same namespace and Service name, one remote."""
    ns = ak_node.namespace
    second = cluster_factory("local-2")
    second.kubectl("create", "namespace", ns)
    other = AKProcess(second, remote_cluster, f"ak-{uuid.uuid4().hex[:5]}", node_ip=NODE_IP)
    other.start()
    try:
        wait_for_node_ready(other)
        shared = {"tier": "shared"}
        for cluster, node, name in (
            (local_cluster, ak_node.name, "a"),
            (second, other.node_name, "b"),
        ):
            cluster.apply(
                [
                    pod(name, node) | {"metadata": {"name": name, "labels": shared}},
                    service("shared", shared),
                ],
                ns,
            )
        rns_a, rns_b = ak_node.remote_namespace, remote_namespace(other.node_name, ns)
        for rns in (rns_a, rns_b):
            _copy_selects_own_pod_only(remote_cluster, rns)
        # One cluster's pod gone: only its copy goes.
        second.kubectl("delete", "pod", "b", "-n", ns, "--wait=false")
        wait_until("b's copy gone", lambda: remote_service(remote_cluster, rns_b, "shared") is None)
        assert remote_service(remote_cluster, rns_a, "shared") is not None
    finally:
        other.stop()
