"""Other writers on the same objects: AK keeps what is theirs and restores what is its own."""

from __future__ import annotations

import json

import pytest

from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def conditions(p: dict[str, object]) -> dict[str, str]:
    status = p["status"]
    assert isinstance(status, dict)
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def test_another_writers_pod_condition_survives_status_sync(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply(pod("shared", ak_node.name), ns)
    wait_until("Running", lambda: running(pods(local_cluster, ns)))
    audited = {
        "type": "example.com/Audited",
        "status": "True",
        "lastTransitionTime": "2026-11-22T00:00:00Z",
    }
    local_cluster.kubectl(
        "-n",
        ns,
        "patch",
        "pod",
        "shared",
        "--subresource=status",
        "--type=strategic",
        "-p",
        json.dumps({"status": {"conditions": [audited]}}),
    )
    # The remote side changes: AK must write the new status and keep the local condition.
    remote_cluster.kubectl(
        "-n",
        rns,
        "patch",
        "pod",
        "shared",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"message": "remote says hello"}}),
    )
    got = wait_until(
        "the remote message mirrored",
        lambda: [
            p for p in pods(local_cluster, ns) if p["status"].get("message") == "remote says hello"
        ],
    )
    assert conditions(got[0]).get("example.com/Audited") == "True"
    assert conditions(got[0]).get("Ready") == "True"


def test_tampered_remote_copy_is_restored(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.kubectl("-n", ns, "create", "configmap", "settings", "--from-literal=mode=safe")
    container = {"name": "c", "image": "x", "envFrom": [{"configMapRef": {"name": "settings"}}]}
    local_cluster.apply(pod("reader", ak_node.name, containers=[container]), ns)
    wait_until("Running", lambda: running(pods(local_cluster, ns)))
    remote_cluster.kubectl(
        "-n",
        rns,
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        json.dumps({"data": {"mode": "evil"}}),
    )
    wait_until(
        "the copy restored",
        lambda: (
            remote_cluster.get_json(f"/api/v1/namespaces/{rns}/configmaps/settings")["data"]["mode"]
            == "safe"
        ),
        timeout=20,
    )
