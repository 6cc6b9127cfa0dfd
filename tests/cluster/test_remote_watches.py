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

from ak.core import storage
from ak.core.names import remote_namespace
from tests.cluster.realutil import get_or_none
from tests.cluster.util import claim_manifest, pod, pods, running, wait_until
from tests.conftest import ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

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


def test_an_ak_holds_one_remote_watch_per_collection_and_only_what_it_uses(
    local_cluster: Cluster, cluster_factory: ClusterFactory
) -> None:
    """Idle, AK follows only its pods and namespaces on the remote, and the
    remote StorageClasses. With a pod using a Secret, a ConfigMap, its service
    account token and a Service, every part of AK that follows remote objects
    is busy: one watch per collection (each under AK's node label), Events one
    per remote namespace. Before, the identity Secrets and the Secret copies,
    and the root CA replicas and the ConfigMap copies, were separate watches,
    and the copies of Services, NetworkPolicies and PDBs were watched whether
    used or not: 9 watches idle, 10 here.

    The remote is this test's own: on the shared one, another test's AK
    closing its Secret and ConfigMap watches meanwhile (30 s after its pods
    went) cancelled this AK's opening ones out of the difference (seen in a
    full run)."""
    remote_cluster = cluster_factory("remote-watches", kwok_nodes=1)
    name, ns = f"ak-w-{uuid.uuid4().hex[:4]}", f"w-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(local_cluster, remote_cluster, name)
    local_cluster.kubectl("create", "namespace", ns)
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "s", "--from-literal=k=v")
    local_cluster.kubectl("-n", ns, "create", "configmap", "c", "--from-literal=k=v")
    before = settled_watches(remote_cluster)
    remote_class = ""
    ak.start()
    try:
        wait_for_node_ready(ak)
        # Storage (on by default) follows the remote StorageClasses, few and
        # cluster-wide, for the local classes it mirrors; its claims' watch is
        # open only while the node has claims.
        idle = {"pods": 1, "namespaces": 1, "storageclasses": 1}

        # The watches of copies close once unused for a while (ak/kube/ondemand.py).
        def idle_now() -> bool:
            now = settled_watches(remote_cluster) - before
            print("idle:", dict(now))
            return now == idle

        # The watches of copies close once unused for a while (ak/kube/ondemand.py).
        wait_until("only the pods' and namespaces' watches", idle_now, timeout=180)
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
        mine = settled_watches(remote_cluster) - before
        print("remote watches of one AK:", dict(mine))
        assert mine == {
            "pods": 1,
            "namespaces": 1,
            "secrets": 1,
            "configmaps": 1,
            "services": 1,
            "events": 1,
            "storageclasses": 1,
        }, dict(mine)

        # A claim, long after the remote claims' watch closed at start: its
        # selection opens the watch, and the claim is provisioned through it.
        remote_class = f"w-{uuid.uuid4().hex[:5]}"
        remote_cluster.apply(
            [
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": remote_class},
                    "provisioner": "kubernetes.io/no-provisioner",
                    "volumeBindingMode": "Immediate",
                },
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": remote_class},
                    "spec": {
                        "capacity": {"storage": "1Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": remote_class,
                        "hostPath": {"path": f"/tmp/{remote_class}"},
                    },
                },
            ]
        )
        local_class = storage.local_class_name(remote_class)
        wait_until(
            f"local StorageClass {local_class}",
            lambda: get_or_none(
                local_cluster, f"/apis/storage.k8s.io/v1/storageclasses/{local_class}"
            ),
        )
        local_cluster.apply(claim_manifest("data", local_class), ns)
        volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
        local_cluster.apply(pod("db", ak.node_name, volumes=[volume]), ns)
        wait_until(
            "the claim Bound through AK",
            lambda: (
                local_cluster.get_json(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data")
                .get("status", {})
                .get("phase")
                == "Bound"
            ),
            timeout=120,
        )
        with_claim = settled_watches(remote_cluster) - before
        print("remote watches with a claim:", dict(with_claim))
        assert with_claim["persistentvolumeclaims"] == 1, dict(with_claim)
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
        if remote_class:
            remote_cluster.kubectl("delete", "pv", remote_class, "--wait=false", check=False)
            remote_cluster.kubectl("delete", "storageclass", remote_class, check=False)
