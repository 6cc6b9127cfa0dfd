"""Several remotes for one local cluster: one AK node per remote, pods spread by the scheduler.

The way past one remote's limits (docs/benchmarks.md, "Capacity of one remote
API server") is more remotes. Each AK node's namespaces, copies, identities and
tokens must then live on its own remote only, and each remote must see only the
pods its node was given.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ak.core.labels import (
    ANNOTATION_LOCAL_UID,
    ANNOTATION_POD_NAME,
    LABEL_NODE,
    LABEL_POD_IDENTITY,
    POD_IDENTITY_VALUE,
)
from ak.core.names import node_label_value, remote_namespace
from tests.cluster.util import deployment, pods, running, wait_until
from tests.conftest import ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
GROUP_LABEL = "test.actual.vk/group"


def _web(group: str, replicas: int) -> Obj:
    """A Deployment for the two AK nodes of ``group``, spread one-to-one between them."""
    web = deployment(
        "web",
        "unused",
        replicas,
        containers=[
            {
                "name": "c",
                "image": "registry.invalid/app:1",
                "env": [
                    {
                        "name": "K",
                        "valueFrom": {"secretKeyRef": {"name": "settings", "key": "k"}},
                    }
                ],
            }
        ],
    )
    spec = web["spec"]["template"]["spec"]
    spec["nodeSelector"] = {GROUP_LABEL: group}
    spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]
    return web


def _names(items: list[Obj]) -> set[str]:
    return {p["metadata"]["name"] for p in items}


def _secrets(cluster: Cluster, namespace: str) -> list[Obj]:
    items: list[Obj] = cluster.get_json(f"/api/v1/namespaces/{namespace}/secrets")["items"]
    return items


def _namespaces_of(cluster: Cluster, node: str) -> list[str]:
    params = {"labelSelector": f"{LABEL_NODE}={node_label_value(node)}"}
    items = cluster.get_json("/api/v1/namespaces", params)["items"]
    return [n["metadata"]["name"] for n in items if not n["metadata"].get("deletionTimestamp")]


def test_one_local_cluster_spread_over_two_remotes(
    cluster_factory: ClusterFactory,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    tmp_path: Path,
) -> None:
    other_remote = cluster_factory("remote-b", kwok_nodes=2)
    group = uuid.uuid4().hex[:6]
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nlabels = {{ "{GROUP_LABEL}" = "{group}" }}\n')
    nodes = [
        AKProcess(local_cluster, remote, f"ak-{tag}-{group}", extra_args=[f"--config={config}"])
        for remote, tag in ((remote_cluster, "a"), (other_remote, "b"))
    ]
    ns = f"spread-{group}"
    local_cluster.kubectl("create", "namespace", ns)
    try:
        local_cluster.kubectl(
            "-n", ns, "create", "secret", "generic", "settings", "--from-literal=k=v"
        )
        for ak in nodes:
            ak.start()
        for ak in nodes:
            wait_for_node_ready(ak)
        local_cluster.apply(_web(group, 4), ns)
        wait_until(
            "4 web pods Running",
            lambda: len(running(pods(local_cluster, ns, "app=web"))) == 4,
            timeout=90,
        )
        local = pods(local_cluster, ns, "app=web")
        for ak, other in ((nodes[0], nodes[1]), (nodes[1], nodes[0])):
            mine = [p for p in local if p["spec"]["nodeName"] == ak.node_name]
            # The local scheduler spread them: two per node.
            assert len(mine) == 2, [p["spec"]["nodeName"] for p in local]
            rns = remote_namespace(ak.node_name, ns)
            # This node's namespace exists on its own remote only.
            assert _namespaces_of(ak.remote, ak.node_name) == [rns]
            assert _namespaces_of(other.remote, ak.node_name) == []
            twins = pods(ak.remote, rns)
            assert _names(twins) == _names(mine)
            by_name = {p["metadata"]["name"]: p for p in mine}
            for twin in twins:
                local_pod = by_name[twin["metadata"]["name"]]
                assert (
                    twin["metadata"]["annotations"][ANNOTATION_LOCAL_UID]
                    == (local_pod["metadata"]["uid"])
                )
            # Its Secret copy, and one identity per pod of its own, nothing of the other's.
            secrets = _secrets(ak.remote, rns)
            assert "settings" in _names(secrets)
            identities = [
                s
                for s in secrets
                if s["metadata"].get("labels", {}).get(LABEL_POD_IDENTITY) == POD_IDENTITY_VALUE
            ]
            owners = {s["metadata"]["annotations"][ANNOTATION_POD_NAME] for s in identities}
            assert owners == _names(mine)
        # Scaled to zero: each remote is emptied of its own node's pods and copies.
        local_cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=0")
        for ak in nodes:
            rns = remote_namespace(ak.node_name, ns)
            wait_until(
                f"{ak.remote.name} emptied of {rns}",
                lambda ak=ak, rns=rns: (
                    not pods(ak.remote, rns)  # type: ignore[misc]
                    and "settings" not in _names(_secrets(ak.remote, rns))
                ),
                timeout=90,
            )
    finally:
        for ak in nodes:
            ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        for ak in nodes:
            local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
