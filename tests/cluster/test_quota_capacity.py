"""Remote limits visible locally: the node advertises no more pods than the
tenant's remote quota allows, and a pod the quota refuses says so while it waits."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ak.core.names import remote_namespace
from tests.cluster.util import events_for, phase, pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

CONFIG = """
[namespaces.resourceQuota.hard]
pods = "2"
"""


def test_the_node_stops_at_the_remote_quota_and_a_refused_pod_says_why(
    tmp_path: Path, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    config = tmp_path / "ak.toml"
    config.write_text(CONFIG)
    name, ns = f"ak-quota-{uuid.uuid4().hex[:4]}", f"quota-{uuid.uuid4().hex[:4]}"
    rns = remote_namespace(name, ns)
    ak = AKProcess(local_cluster, remote_cluster, name, extra_args=[f"--config={config}"])
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)

        def allocatable_pods() -> str:
            return str(ak.node()["status"]["allocatable"]["pods"])

        # No remote namespace yet: the template's quota is all a namespace can hold.
        wait_until("the node advertises the quota's 2 pods", lambda: allocatable_pods() == "2", 30)
        for i in range(2):
            local_cluster.apply(pod(f"p{i}", name), ns)
        wait_until("2 pods Running", lambda: len(running(pods(local_cluster, ns))) == 2)
        # The local scheduler stops there: a third pod is not bound to the node.
        local_cluster.apply(pod("p2", name), ns)
        unscheduled = wait_until(
            "the scheduler refuses the third pod",
            lambda: [
                e for e in events_for(local_cluster, ns, "p2") if e["reason"] == "FailedScheduling"
            ],
        )
        assert "Too many pods" in unscheduled[0]["message"]
        local_cluster.kubectl("delete", "pod", "p2", "-n", ns, "--wait=false")

        # A pod bound by hand bypasses the scheduler: the remote quota refuses it,
        # and the pod says so, Pending, while it waits for room.
        bound = pod("p3", name)
        bound["spec"]["nodeName"] = name
        del bound["spec"]["nodeSelector"]
        local_cluster.apply(bound, ns)
        refused = wait_until(
            "a quota refusal Event",
            lambda: [e for e in events_for(local_cluster, ns, "p3") if e["type"] == "Warning"],
        )
        assert refused[0]["reason"] == "ProviderCreateFailed"
        assert "exceeded quota" in refused[0]["message"]
        local = local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/p3")
        assert phase(local) == "Pending"
        waiting = local["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "ProviderCreateFailed"
        # Room made: it goes ahead on its own.
        local_cluster.kubectl("delete", "pod", "p0", "-n", ns, "--wait=false")
        wait_until(
            "p3 Running once the quota has room",
            lambda: running(pods(local_cluster, ns, "app=p3")),
            90,
        )
        assert [
            p["metadata"]["name"]
            for p in pods(remote_cluster, rns)
            if p["metadata"]["name"] == "p3"
        ]

        # Two namespaces, one pod each, one free place in each: the node holds
        # what it runs plus the least room left in any namespace (2 + 1), not
        # the template's 2 (which a node that ignored what is used would show).
        ns2 = f"quota-{uuid.uuid4().hex[:4]}"
        local_cluster.kubectl("create", "namespace", ns2)
        local_cluster.apply({**bound, "metadata": {"name": "q0", "labels": {"app": "q0"}}}, ns2)
        wait_until("q0 Running", lambda: running(pods(local_cluster, ns2, "app=q0")))
        local_cluster.kubectl("delete", "pod", "p1", "-n", ns, "--wait=true")
        wait_until("the node advertises 3 pods", lambda: allocatable_pods() == "3", 60)
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)
