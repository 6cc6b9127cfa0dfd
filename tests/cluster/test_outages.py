"""Outages of either API server, and watches that expire: nothing lost, no churn."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import trio

from ak.kube import informer as informer_module
from ak.kube.client import KubeClient, path
from ak.kube.config import load_kubeconfig
from ak.kube.informer import Informer
from tests.cluster.util import deployment, pods, running, wait_until
from tests.conftest import ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
OUTAGE = 120.0


def uids(cluster: Cluster, ns: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(cluster, ns)}


def ready_reason(ak: AKProcess) -> str:
    cond = next(c for c in ak.node()["status"]["conditions"] if c["type"] == "Ready")
    return "Ready" if cond["status"] == "True" else str(cond["reason"])


def test_remote_down_two_minutes(cluster_factory: ClusterFactory, local_cluster: Cluster) -> None:
    remote = cluster_factory("remote-down", kwok_nodes=1)
    node, ns = f"ak-rd-{uuid.uuid4().hex[:4]}", f"rd-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(local_cluster, remote, node)
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)
        local_cluster.apply(deployment("web", node, 3), ns)
        wait_until("3 Running", lambda: len(running(pods(local_cluster, ns))) == 3)
        local_before = uids(local_cluster, ns)
        rns = next(
            iter(
                remote.get_json(
                    "/api/v1/namespaces", {"labelSelector": f"actual.vk/node-name={node}"}
                )["items"]
            )
        )
        remote_before = uids(remote, rns["metadata"]["name"])

        remote.component("kube-apiserver").stop()
        assert (
            wait_until("node NotReady", lambda: (r := ready_reason(ak)) != "Ready" and r, 30)
            == "RemoteUnreachable"
        )
        # Work that arrives during the outage waits for the remote cluster.
        local_cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=4")
        time.sleep(OUTAGE)
        during = pods(local_cluster, ns)
        assert {
            n: u for n, u in uids(local_cluster, ns).items() if n in local_before
        } == local_before
        assert not [p for p in during if p["status"].get("phase") in ("Failed", "Succeeded")]

        remote.restart("kube-apiserver")
        back = time.monotonic()
        wait_until("node Ready", lambda: ready_reason(ak) == "Ready", 30)
        wait_until(
            "4 Running after the outage", lambda: len(running(pods(local_cluster, ns))) == 4, 60
        )
        current_after = time.monotonic() - back
        print(f"remote outage {OUTAGE:.0f}s: current again {current_after:.1f}s after it returned")
        assert {
            n: u for n, u in uids(local_cluster, ns).items() if n in local_before
        } == local_before
        assert {
            n: u for n, u in uids(remote, rns["metadata"]["name"]).items() if n in remote_before
        } == remote_before
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", node, "--wait=false", check=False)


def test_local_down_two_minutes(cluster_factory: ClusterFactory, remote_cluster: Cluster) -> None:
    local = cluster_factory("local-down")
    node, ns = f"ak-ld-{uuid.uuid4().hex[:4]}", f"ld-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(local, remote_cluster, node)
    local.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)
        local.apply(deployment("web", node, 3), ns)
        wait_until("3 Running", lambda: len(running(pods(local, ns))) == 3)
        rns = next(
            iter(
                remote_cluster.get_json(
                    "/api/v1/namespaces", {"labelSelector": f"actual.vk/node-name={node}"}
                )["items"]
            )
        )["metadata"]["name"]
        remote_before = uids(remote_cluster, rns)
        local_before = uids(local, ns)

        local.component("kube-apiserver").stop()
        time.sleep(OUTAGE)
        # AK acted on nothing it could not see: the remote pods still run, untouched.
        assert uids(remote_cluster, rns) == remote_before
        assert ak.alive()
        local.restart("kube-apiserver")
        back = time.monotonic()
        wait_until("node Ready", lambda: ready_reason(ak) == "Ready", 60)
        local.kubectl("-n", ns, "scale", "deployment/web", "--replicas=4")
        wait_until("4 Running", lambda: len(running(pods(local, ns))) == 4, 60)
        took = time.monotonic() - back
        print(f"local outage {OUTAGE:.0f}s: current again {took:.1f}s after it returned")
        assert {n: u for n, u in uids(local, ns).items() if n in local_before} == local_before
        assert {
            n: u for n, u in uids(remote_cluster, rns).items() if n in remote_before
        } == remote_before
    finally:
        ak.stop()


async def test_informer_relists_on_410_without_losing_objects(
    cluster_factory: ClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two: the lists below span pages, each cached as it arrives.
    monkeypatch.setattr(informer_module, "PAGE", 2)
    # Without the watch cache, watches are served by etcd, which forgets compacted history.
    local_cluster = await trio.to_thread.run_sync(
        lambda: cluster_factory("no-watch-cache", apiserver_args=["--watch-cache=false"])
    )
    client = KubeClient(load_kubeconfig(str(local_cluster.kubeconfig)), name="test")
    ns = f"gone-{uuid.uuid4().hex[:4]}"
    events: list[tuple[str | None, str | None]] = []
    try:
        await client.create(path("namespaces"), {"metadata": {"name": ns}})
        for i in range(3):
            await client.create(
                path("configmaps", namespace=ns),
                {"metadata": {"name": f"cm{i}"}, "data": {"k": "v"}},  # data: managedFields
            )
        informer = Informer(
            client,
            path("configmaps", namespace=ns),
            handler=lambda old, new: events.append(
                (
                    (old or {}).get("metadata", {}).get("name"),
                    (new or {}).get("metadata", {}).get("name"),
                )
            ),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(informer.run)
            await informer.synced.wait()
            assert informer.relists == 1
            nursery.cancel_scope.cancel()
        # Changes while the informer is away, then etcd compacts past its version:
        # its next watch gets 410 Gone and it must relist.
        await client.create(path("configmaps", namespace=ns), {"metadata": {"name": "cm-new"}})
        await client.delete(path("configmaps", namespace=ns, name="cm0"))
        await trio.to_thread.run_sync(local_cluster.etcd.compact)
        events.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(informer.run)
            with trio.fail_after(20):
                while informer.relists < 2:  # noqa: ASYNC110 - polls the informer's counter
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        names = {o["metadata"]["name"] for o in informer.values()}
        assert {"cm1", "cm2", "cm-new"} <= names and "cm0" not in names
        # The cache keeps no managedFields (memory), though the API server sends them.
        assert (await client.get(path("configmaps", namespace=ns, name="cm1")))["metadata"][
            "managedFields"
        ]
        assert not [o for o in informer.values() if "managedFields" in o["metadata"]]
        # The relist reported exactly the differences: one added, one deleted.
        assert (None, "cm-new") in events and ("cm0", None) in events
        assert not [e for e in events if e[0] == e[1] and e[0] in ("cm1", "cm2")]
    finally:
        await client.delete(path("namespaces", name=ns))
        await client.aclose()
