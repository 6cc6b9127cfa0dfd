"""Several replicas of one node: a standby takes over when the leader dies."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.cluster.util import deployment, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_standby_takes_over_within_15s_without_recreating(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    node, ns = f"ak-ha-{uuid.uuid4().hex[:4]}", f"ha-{uuid.uuid4().hex[:4]}"
    replicas = [
        AKProcess(
            local_cluster,
            remote_cluster,
            node,
            extra_args=["--leader-elect", f"--leader-elect-identity={node}/{r}"],
        )
        for r in ("a", "b")
    ]
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"
    local_cluster.kubectl("create", "namespace", ns)
    a, b = replicas
    a.start()
    try:
        wait_for_node_ready(a)
        b.start()
        wait_until("b standing by", lambda: "standing by" in b.log.read_text())
        assert local_cluster.get_json(lease_path)["spec"]["holderIdentity"] == f"{node}/a"
        port = a.node()["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        assert port == a.kubelet_port
        local_cluster.apply(deployment("ha", node, 3), ns)
        wait_until("3 Running", lambda: len(running(pods(local_cluster, ns, "app=ha"))) == 3)
        remote_rns = next(
            p["metadata"]["namespace"]
            for p in remote_cluster.get_json(
                "/api/v1/pods", {"labelSelector": f"actual.vk/node-name={node}"}
            )["items"]
        )
        before = {
            p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(remote_cluster, remote_rns)
        }

        a.kill()
        killed = time.monotonic()
        wait_until(
            "b holds the lease",
            lambda: local_cluster.get_json(lease_path)["spec"]["holderIdentity"] == f"{node}/b",
            timeout=20,
        )
        took_over = time.monotonic() - killed
        wait_until(
            "the node points at b's kubelet port",
            lambda: (
                b.node()["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == b.kubelet_port
            ),
            timeout=20,
        )
        assert took_over <= 15, f"takeover took {took_over:.1f}s"
        local_cluster.kubectl("-n", ns, "scale", "deployment/ha", "--replicas=4")
        wait_until(
            "4 Running under b", lambda: len(running(pods(local_cluster, ns, "app=ha"))) == 4, 60
        )
        after = {
            p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(remote_cluster, remote_rns)
        }
        for name, uid in before.items():
            assert after.get(name) == uid, f"remote pod {name} was re-created or lost"
        assert len(after) == 4
        # No status regression: the pods that ran keep running.
        assert all(p["status"]["phase"] == "Running" for p in pods(local_cluster, ns, "app=ha"))
    finally:
        for r in replicas:
            r.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", node, "--wait=false", check=False)
