"""Replacing the original Go AK (negz/actual-kubelets) under the same node name.

The original wrote remote pods, Secret/ConfigMap copies and namespaces with
only ``actual.vk/node-name`` and ``actual.vk/namespace`` labels (and, on pods,
``actual.vk/replicated-service-account.name``): no UID record, no managed-by
label, no copy marker. The test lets AK run a Deployment, stops it, strips
everything this AK adds from the remote objects so their metadata is exactly
the original's shape (the pods keep running remotely), and starts AK again:
every running pod must be kept, every copy adopted and then managed.
"""

from __future__ import annotations

import json
from typing import Any

from ak.core.labels import (
    ANNOTATION_LOCAL_UID,
    ANNOTATION_PROPAGATED_KEYS,
    ANNOTATION_SOURCE_RESOURCE_VERSION,
    ANNOTATION_SOURCE_UID,
    ANNOTATION_TEMPLATE_KEYS,
    LABEL_MANAGED_BY,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_REPLICA,
)
from tests.cluster.util import deployment, pods, running, wait_until
from tests.conftest import AKNode, wait_for_node_ready
from tests.testbed.cluster import Cluster

Obj = dict[str, Any]

ORIGINAL_LABELS = {LABEL_NODE, LABEL_NAMESPACE}


def _strip(cluster: Cluster, kind: str, ns: str | None, name: str, obj: Obj) -> None:
    """Merge-patch away every label/annotation the original AK did not write."""
    labels = obj["metadata"].get("labels") or {}
    annotations = obj["metadata"].get("annotations") or {}
    ours = {
        LABEL_MANAGED_BY,
        LABEL_REPLICA,
        ANNOTATION_LOCAL_UID,
        ANNOTATION_PROPAGATED_KEYS,
        ANNOTATION_SOURCE_UID,
        ANNOTATION_SOURCE_RESOURCE_VERSION,
        ANNOTATION_TEMPLATE_KEYS,
    }
    patch: Obj = {
        "metadata": {
            "labels": {k: None for k in labels if k in ours or k.startswith("pod-security.")},
            "annotations": {k: None for k in annotations if k in ours},
        }
    }
    if kind == "pod":
        patch["metadata"]["annotations"]["actual.vk/replicated-service-account.name"] = "default"
    where = ["-n", ns] if ns else []
    cluster.kubectl(*where, "patch", kind, name, "--type=merge", "-p", json.dumps(patch))


def _remote(cluster: Cluster, resource: str, rns: str, selector: str) -> list[Obj]:
    items: list[Obj] = cluster.get_json(
        f"/api/v1/namespaces/{rns}/{resource}", {"labelSelector": selector}
    )["items"]
    return items


def _warnings(cluster: Cluster, ns: str) -> list[str]:
    items = cluster.get_json(f"/api/v1/namespaces/{ns}/events")["items"]
    return [f"{e['reason']}: {e['message']}" for e in items if e.get("type") == "Warning"]


def test_the_original_aks_pods_and_copies_are_adopted_not_recreated(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns, node = ak_node.namespace, ak_node.remote_namespace, ak_node.name
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "creds", "--from-literal=k=v1")
    local_cluster.kubectl("-n", ns, "create", "configmap", "cfg", "--from-literal=f=one")
    spec = {
        "containers": [
            {
                "name": "c",
                "image": "registry.invalid/app:1",
                "env": [
                    {
                        "name": "K",
                        "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}},
                    }
                ],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
            }
        ],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
    }
    local_cluster.apply(deployment("web", node, 5, **spec), ns)
    wait_until("5 pods Running", lambda: len(running(pods(local_cluster, ns, "app=web"))) == 5)

    # The original AK's world: AK stopped, its remote objects in the original's shape.
    ak_node.ak.stop()
    before = {}
    for p in _remote(remote_cluster, "pods", rns, f"{LABEL_NODE}={node}"):
        before[p["metadata"]["name"]] = p["metadata"]["uid"]
        _strip(remote_cluster, "pod", rns, p["metadata"]["name"], p)
    assert len(before) == 5
    for resource, kind in (("secrets", "secret"), ("configmaps", "configmap")):
        for name in ("creds", "cfg"):
            found = [
                o
                for o in _remote(remote_cluster, resource, rns, LABEL_REPLICA)
                if o["metadata"]["name"] == name
            ]
            for o in found:
                _strip(remote_cluster, kind, rns, name, o)
    namespace = remote_cluster.get_json(f"/api/v1/namespaces/{rns}")
    _strip(remote_cluster, "namespace", None, rns, namespace)
    for p in _remote(remote_cluster, "pods", rns, f"{LABEL_NODE}={node}"):
        assert set(p["metadata"]["labels"]) & {LABEL_MANAGED_BY} == set()
        assert ANNOTATION_LOCAL_UID not in p["metadata"]["annotations"]
    assert not _remote(remote_cluster, "configmaps", rns, LABEL_REPLICA)
    assert not _remote(remote_cluster, "secrets", rns, LABEL_REPLICA)

    # This AK under the same name: the same five remote pods, now its own.
    ak_node.ak.start()
    wait_for_node_ready(ak_node.ak)
    local_uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(local_cluster, ns)}

    def adopted() -> list[Obj] | None:
        remote = _remote(remote_cluster, "pods", rns, f"{LABEL_NODE}={node}")
        ok = [
            p
            for p in remote
            if (p["metadata"].get("annotations") or {}).get(ANNOTATION_LOCAL_UID)
            == local_uids.get(p["metadata"]["name"])
        ]
        return remote if len(ok) == 5 == len(remote) else None

    remote = wait_until("the five remote pods adopted", adopted)
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in remote} == before
    wait_until(
        "both copies adopted",
        lambda: (
            len(_remote(remote_cluster, "secrets", rns, LABEL_REPLICA))
            + len(_remote(remote_cluster, "configmaps", rns, LABEL_REPLICA))
            == 2
        ),
    )
    assert len(running(pods(local_cluster, ns, "app=web"))) == 5

    # Managed like AK's own from now on: changes reach the copy, new pods run.
    local_cluster.kubectl(
        "-n", ns, "patch", "configmap", "cfg", "--type=merge", "-p", '{"data":{"f":"two"}}'
    )
    wait_until(
        "ConfigMap change replicated",
        lambda: (
            remote_cluster.get_json(f"/api/v1/namespaces/{rns}/configmaps/cfg")["data"]
            == {"f": "two"}
        ),
    )
    local_cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=6")
    wait_until("6 pods Running", lambda: len(running(pods(local_cluster, ns, "app=web"))) == 6)
    assert _warnings(local_cluster, ns) == []

    # Scaling to zero leaves nothing behind: copies and the namespace go.
    local_cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=0")
    wait_until(
        "remote namespace gone",
        lambda: remote_cluster.kubectl("get", "namespace", rns, check=False).returncode != 0,
        timeout=120,
    )


def test_a_deployment_sharing_one_secret_raises_no_warning(
    ak_node: AKNode, local_cluster: Cluster
) -> None:
    """20 pod workers create the same copy at once; the losers' 409s are not conflicts."""
    ns, node = ak_node.namespace, ak_node.name
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "shared", "--from-literal=k=v")
    spec = {
        "containers": [
            {
                "name": "c",
                "image": "registry.invalid/app:1",
                "envFrom": [{"secretRef": {"name": "shared"}}],
            }
        ],
    }
    local_cluster.apply(deployment("many", node, 20, **spec), ns)
    wait_until(
        "20 pods Running",
        lambda: len(running(pods(local_cluster, ns, "app=many"))) == 20,
        timeout=120,
    )
    assert _warnings(local_cluster, ns) == []
