"""What one AK costs the remote API server in watches (issue #27).

Many local clusters share one remote: each watch an AK holds is a watcher in
the remote API server, checked against every event of its resource, every
tenant's. Counted here from the remote API server's own metric
(``apiserver_longrunning_requests``, which has no user-agent label: the count
is the difference AK's start makes, with nothing else starting meanwhile).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from ak.core.names import remote_namespace
from ak.testbed.akproc import AKProcess
from ak.testbed.cluster import Cluster
from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready

pytestmark = pytest.mark.cluster


def remote_watches(cluster: Cluster) -> Counter[str]:
    """Open watches on the API server right now, by resource."""
    with cluster.http() as c:
        text = c.get("/metrics").text
    by_resource: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in line:
            labels = line[line.index("{") + 1 : line.index("}")]
            resource = dict(kv.split("=", 1) for kv in labels.split(","))["resource"].strip('"')
            by_resource[resource] += int(float(line.rsplit(" ", 1)[1]))
    return +by_resource


def settled_watches(cluster: Cluster) -> Counter[str]:
    """The count once three readings a second apart agree (watches re-open now and then)."""
    readings = [remote_watches(cluster)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(1)
        readings.append(remote_watches(cluster))
        if len(readings) >= 3 and readings[-1] == readings[-2] == readings[-3]:
            return readings[-1]
    return readings[-1]


def test_one_ak_holds_one_remote_watch_per_collection(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    """A pod using a Secret, a ConfigMap, its service account token and a
    Service: every part of AK that follows remote objects is busy, and they
    share one watch per collection, each under AK's node label. Before, the
    identity Secrets and the Secret copies, and the root CA replicas and the
    ConfigMap copies, were separate watches (two of each)."""
    name, ns = f"ak-w-{uuid.uuid4().hex[:4]}", f"w-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(local_cluster, remote_cluster, name)
    local_cluster.kubectl("create", "namespace", ns)
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "s", "--from-literal=k=v")
    local_cluster.kubectl("-n", ns, "create", "configmap", "c", "--from-literal=k=v")
    before = settled_watches(remote_cluster)
    ak.start()
    try:
        wait_for_node_ready(ak)
        container = {
            "name": "c",
            "image": "registry.invalid/app:1",
            "env": [
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            ],
        }
        local_cluster.apply(pod("app", ak.node_name, containers=[container]), ns)
        local_cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "app"}, "ports": [{"port": 80}]},
            },
            ns,
        )
        wait_until("Running", lambda: running(pods(local_cluster, ns)))
        rns = remote_namespace(ak.node_name, ns)
        wait_until(
            "the Service copied",
            lambda: remote_cluster.get_json(f"/api/v1/namespaces/{rns}/services/web"),
        )
        after = settled_watches(remote_cluster)
        mine = after - before
        print("remote watches of one AK:", dict(mine))
        # One per collection; Events are watched per remote namespace (one here).
        assert all(n == 1 for n in mine.values()), dict(mine)
        assert set(mine) <= {
            "pods",
            "namespaces",
            "secrets",
            "configmaps",
            "services",
            "events",
            "networkpolicies",
            "poddisruptionbudgets",
        }, dict(mine)
        assert {"pods", "namespaces", "secrets", "configmaps"} <= set(mine), dict(mine)
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
