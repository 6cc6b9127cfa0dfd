"""In a burst of new pods, changes to pods that already run remotely go first."""

from __future__ import annotations

import trio
import trio.testing

from ak.core.labels import LABEL_NAMESPACE, LABEL_NODE
from ak.core.names import remote_namespace
from ak.events import EventRecorder
from ak.kube.registry import Informers
from ak.pods.controller import KubeLocalWrites, PodController
from ak.pods.remote import PodSettings, RemoteCluster
from tests.unit.fixtures import offline_client

NODE = "vk-order"


def _local(name: str, **meta: object) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": f"u-{name}", **meta}}


def _remote(name: str) -> dict[str, object]:
    return {
        "metadata": {
            "namespace": remote_namespace(NODE, "ns"),
            "name": name,
            "labels": {LABEL_NODE: NODE, LABEL_NAMESPACE: "ns"},
        }
    }


async def test_creations_wait_behind_running_pods_and_deletions() -> None:
    local, remote = offline_client("local"), offline_client("remote")
    informers = Informers()
    cluster = RemoteCluster(
        remote, PodSettings(node_name=NODE, node_label=NODE, extra_env=[]), informers=informers
    )
    pc = PodController(
        local,
        NODE,
        cluster,
        KubeLocalWrites(local, EventRecorder(local, NODE)),
        informers=informers,
    )
    cluster._notify = pc._on_twin
    for name in ("new1", "new2", "running"):
        pc._on_local(None, _local(name))
    cluster.remote_pods._apply(
        {"type": "ADDED", "object": _remote("running")}
    )  # its remote twin changed: urgent
    pc._on_local(None, _local("new3"))
    pc._on_local(_local("gone"), None)  # deleted locally: urgent
    pc._on_local(None, _local("leaving", deletionTimestamp="2026-12-01T00:00:00Z"))
    seen: list[str] = []

    async def record(key: tuple[str, str]) -> None:
        seen.append(key[1])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pc.queue.run_workers, 1, record)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    await local.aclose()
    await remote.aclose()
    assert seen == ["running", "gone", "leaving", "new1", "new2", "new3"]
