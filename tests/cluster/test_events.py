"""Remote pod Events show up on the local pod, so `kubectl describe` explains a stuck pod."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from ak.core.event_mirror import HEARTBEAT_SLACK
from ak.core.names import remote_namespace
from ak.core.timefmt import parse_time
from tests.cluster.util import events_for, pod, pods, running, wait_until
from tests.conftest import AKNode, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster
from tests.testbed.procs import free_port

Obj = dict[str, Any]

pytestmark = pytest.mark.cluster


def test_remote_scheduling_events_are_mirrored(ak_node: AKNode, local_cluster: Cluster) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("fits", ak_node.name), ns)
    huge = [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "5000"}}}]
    local_cluster.apply(pod("too-big", ak_node.name, containers=huge), ns)
    wait_until("the small pod Running", lambda: running(pods(local_cluster, ns, "app=fits")))
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
    # The remote scheduler's assignment is not news locally (NOT_MIRRORED): the
    # small pod was assigned before the big one failed, so it would be here by now.
    assert not _mirrored(local_cluster, ns, "fits")


def _remote_event(remote: Cluster, rns: str, pod_name: str, reason: str) -> None:
    """An Event about a remote pod, as the remote kubelet would post one."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{pod_name}."},
        "involvedObject": {"kind": "Pod", "namespace": rns, "name": pod_name},
        "reason": reason,
        "message": f"{reason} for the test",
        "type": "Normal",
        "source": {"component": "kubelet"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    with remote.http() as c:
        c.post(f"/api/v1/namespaces/{rns}/events", json=event).raise_for_status()


def _mirrored(cluster: Cluster, ns: str, name: str) -> list[Obj]:
    return [
        e
        for e in events_for(cluster, ns, name)
        if "(remote)" in e.get("source", {}).get("component", "")
    ]


def _mirror_writes(ak: AKProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{ak.metrics_port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('ak_events_mirrored_total{result="ok"}')
    )


def test_a_restart_writes_only_new_events(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, ak = ak_node.namespace, ak_node.ak
    rns = remote_namespace(ak_node.name, ns)
    local_cluster.apply(pod("before", ak_node.name), ns)
    wait_until("the pod Running", lambda: running(pods(local_cluster, ns, "app=before")))
    _remote_event(remote_cluster, rns, "before", "Started")
    first = wait_until("a mirrored event", lambda: _mirrored(local_cluster, ns, "before"))
    last = parse_time(first[0]["lastTimestamp"])
    lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{ak_node.name}"
    # The Event counts as mirrored once AK heartbeat well after it.
    wait_until(
        "a heartbeat after the event",
        lambda: (
            (parse_time(local_cluster.get_json(lease)["spec"]["renewTime"]) - last).total_seconds()
            > HEARTBEAT_SLACK + 1
        ),
        timeout=45,
    )
    ak.kill()
    ak.metrics_port = free_port()
    ak.start()
    wait_for_node_ready(ak)
    local_cluster.apply(pod("after", ak_node.name), ns)
    wait_until("the new pod Running", lambda: running(pods(local_cluster, ns, "app=after")))
    _remote_event(remote_cluster, rns, "after", "Started")
    wait_until("the new pod's event mirrored", lambda: _mirrored(local_cluster, ns, "after"))
    # Every write since the restart is one of the new pod's Events: none of the old
    # pod's was written again (before the watermark, all were).
    wait_until(
        "writes == the new pod's mirrored events",
        lambda: _mirror_writes(ak) == len(_mirrored(local_cluster, ns, "after")),
        timeout=15,
    )
    time.sleep(2)
    assert _mirror_writes(ak) == len(_mirrored(local_cluster, ns, "after"))
