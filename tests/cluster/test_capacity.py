"""capacity "auto": the node advertises what the remote cluster has free, kept current."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ak.core.quantity import parse_quantity
from tests.cluster.util import wait_until
from tests.conftest import ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_auto_capacity_follows_the_remote_cluster(
    cluster_factory: ClusterFactory, local_cluster: Cluster
) -> None:
    # kwok nodes: 64 CPUs, 256Gi, 10000 pods each
    remote = cluster_factory("remote-capacity", kwok_nodes=2)
    name = f"ak-cap-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(
        local_cluster, remote, name, extra_args=["--auto-capacity", "--auto-capacity-fraction=0.5"]
    )
    ak.start()
    try:
        wait_for_node_ready(ak)

        def allocatable() -> dict[str, Decimal]:
            return {k: parse_quantity(v) for k, v in ak.node()["status"]["allocatable"].items()}

        # 2 nodes x 64 CPUs x 0.5 (the API server returns quantities canonically: "64").
        got = wait_until(
            "auto capacity", lambda: a if (a := allocatable())["cpu"] == 64 else None, 30
        )
        assert got["pods"] == 10000 and got["memory"] == 256 * 2**30
        # Another tenant's pod takes 10 CPUs of the remote cluster: half of that is ours less.
        remote.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "other-tenant"},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "x", "resources": {"requests": {"cpu": "10"}}}
                    ]
                },
            },
            "default",
        )
        wait_until("capacity shrinks", lambda: allocatable()["cpu"] == 59, 30)
        remote.add_kwok_node("kwok-node-extra")
        wait_until("capacity grows with a new node", lambda: allocatable()["cpu"] == 91, 40)
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)
