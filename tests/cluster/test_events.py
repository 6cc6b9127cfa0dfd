"""Remote pod Events show up on the local pod, so `kubectl describe` explains a stuck pod."""

from __future__ import annotations

import pytest

from ak.testbed.cluster import Cluster
from tests.cluster.util import events_for, pod, pods, running, wait_until
from tests.conftest import AKNode

pytestmark = pytest.mark.cluster


def test_remote_scheduling_events_are_mirrored(ak_node: AKNode, local_cluster: Cluster) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("fits", ak_node.name), ns)
    huge = [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "5000"}}}]
    local_cluster.apply(pod("too-big", ak_node.name, containers=huge), ns)
    wait_until("the small pod Running", lambda: running(pods(local_cluster, ns, "app=fits")))
    scheduled = wait_until(
        "a mirrored Scheduled event",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "fits")
            if e["reason"] == "Scheduled" and "(remote)" in e.get("source", {}).get("component", "")
        ],
    )
    assert "kwok-node-" in scheduled[0]["message"]
    stuck = wait_until(
        "a mirrored FailedScheduling warning",
        lambda: [
            e for e in events_for(local_cluster, ns, "too-big") if e["reason"] == "FailedScheduling"
        ],
    )
    assert stuck[0]["type"] == "Warning" and "Insufficient cpu" in stuck[0]["message"]
    assert (
        stuck[0]["involvedObject"]["uid"]
        == pods(local_cluster, ns, "app=too-big")[0]["metadata"]["uid"]
    )
    described = local_cluster.kubectl("-n", ns, "describe", "pod", "too-big").stdout
    assert "FailedScheduling" in described and "Insufficient cpu" in described
