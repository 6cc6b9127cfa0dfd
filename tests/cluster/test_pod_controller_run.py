"""The generic pod controller end to end: ``PodController.run`` against the real
local API server, over a provider that keeps its pods in memory and notifies
the controller of every change, as the remote-cluster provider does.

The unit tests (tests/unit/test_pod_controller.py) call ``sync`` by hand; here
the watch, the work queue, the provider's notifications, the start-up after a
"restart" and the local writes (status patches, the final delete) all run.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ak.core.labels import ANNOTATION_LOCAL_UID
from ak.events import EventRecorder
from ak.kube.client import KubeClient, path
from ak.kube.config import load_kubeconfig
from ak.kube.errors import NotFound
from ak.kube.registry import Informers
from ak.pods.controller import KubeLocalWrites, PodController
from ak.pods.provider import LocalPods, Notify, Outcome
from tests.testbed.cluster import Cluster

Obj = dict[str, Any]
PodKey = tuple[str, str]


class NotifyingProvider:
    """Runs pods nowhere, and says so through ``notify`` as a real provider's watch would."""

    def __init__(self) -> None:
        self.synced = trio.Event()
        self.twins: dict[PodKey, Obj] = {}
        self.created: list[PodKey] = []
        self.deleted: list[tuple[PodKey, int | None]] = []
        self.released: list[PodKey] = []
        self.live_at_start: list[PodKey] | None = None
        self._notify: Notify = lambda key, twin: None

    async def run(self, notify: Notify, local: LocalPods) -> None:
        self._notify = notify
        for key, twin in self.twins.items():  # the initial list
            notify(key, twin)
        self.synced.set()
        await local.synced.wait()
        self.live_at_start = sorted(_key(pod) for pod in local.live())
        await trio.sleep_forever()

    def get(self, key: PodKey) -> Obj | None:
        return self.twins.get(key)

    async def create(self, local: Obj) -> Outcome:
        key = _key(local)
        self.created.append(key)
        self.twins[key] = twin_of(local)
        self._notify(key, self.twins[key])
        return Outcome()

    async def update(self, local: Obj, remote: Obj) -> Outcome:
        return Outcome()

    async def delete(self, key: PodKey, remote: Obj, grace: int | None) -> None:
        # Its containers stop at once: the twin goes, and the provider says so.
        self.deleted.append((key, grace))
        del self.twins[key]
        self._notify(key, None)

    def status(self, local: Obj, remote: Obj) -> Obj:
        status: Obj = remote["status"]
        return status

    def release(self, key: PodKey) -> None:
        self.released.append(key)


def twin_of(local: Obj) -> Obj:
    meta = local["metadata"]
    return {
        "metadata": {
            "name": meta["name"],
            "uid": f"twin-{meta['uid']}",
            "annotations": {ANNOTATION_LOCAL_UID: meta["uid"]},
        },
        "status": {
            "phase": "Running",
            "podIP": "10.9.0.1",
            "startTime": "2026-12-07T10:00:00Z",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _key(pod: Obj) -> PodKey:
    return (pod["metadata"]["namespace"], pod["metadata"]["name"])


def pod_manifest(name: str, node: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
        },
    }


WAIT = 30.0


async def until(what: Callable[[], Awaitable[bool] | bool]) -> None:
    with trio.fail_after(WAIT):
        while True:
            done = what()
            if done if isinstance(done, bool) else await done:
                return
            await trio.sleep(0.2)  # asks the API server (or the provider's list), not a trio task


async def test_run_creates_mirrors_deletes_and_keeps_what_ran_before(
    local_cluster: Cluster,
) -> None:
    client = KubeClient(load_kubeconfig(str(local_cluster.kubeconfig)), name="test")
    suffix = uuid.uuid4().hex[:5]
    node, ns = f"vk-run-{suffix}", f"run-{suffix}"
    pods = path("pods", namespace=ns)
    provider = NotifyingProvider()
    try:
        # A Node, so the pod garbage collector leaves its pods alone.
        await client.create(path("nodes"), {"metadata": {"name": node}})
        await client.create(path("namespaces"), {"metadata": {"name": ns}})
        # Before the controller starts: a pod whose twin already runs (AK restarted).
        before = await client.create(pods, pod_manifest("before", node))
        provider.twins[(ns, "before")] = twin_of(before)
        controller = PodController(
            client,
            node,
            provider,
            KubeLocalWrites(client, EventRecorder(client, node)),
            informers=Informers(),
            workers=2,
        )

        async def phase(name: str) -> str | None:
            try:
                pod = await client.get(path("pods", namespace=ns, name=name))
            except NotFound:
                return "gone"
            phase: str | None = (pod.get("status") or {}).get("phase")
            return phase

        async with trio.open_nursery() as nursery:
            nursery.start_soon(controller.run)
            await until(lambda: _is(phase("before"), "Running"))
            assert provider.live_at_start == [(ns, "before")]
            assert provider.created == []  # what ran before is kept, not re-created

            await client.create(pods, pod_manifest("after", node))
            await until(lambda: _is(phase("after"), "Running"))
            assert provider.created == [(ns, "after")]
            mirrored = await client.get(path("pods", namespace=ns, name="after"))
            assert mirrored["status"]["podIP"] == "10.9.0.1"

            # Graceful deletion: the twin is stopped with the pod's grace period,
            # then the local pod is deleted for good.
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 17}
            await client.delete(path("pods", namespace=ns, name="after"), body)
            await until(lambda: _is(phase("after"), "gone"))
            assert provider.deleted == [((ns, "after"), 17)]
            await until(lambda: (ns, "after") in provider.released)
            assert provider.created == [(ns, "after")]  # once, whatever the echoes
            nursery.cancel_scope.cancel()
    finally:
        await client.delete(path("namespaces", name=ns))
        await client.delete(path("nodes", name=node))
        await client.aclose()


async def _is(value: Awaitable[str | None], wanted: str) -> bool:
    return await value == wanted
