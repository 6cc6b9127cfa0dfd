"""Mirror remote pod Events onto local pods (one watch per remote namespace AK owns).

Rate-limited, so a crash-looping remote pod cannot flood the local API server;
an Event dropped by the limiter is counted, never retried. Events found at
start-up are written only if they are news (``worth_mirroring``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import trio

from ak.core import ownership
from ak.core.event_mirror import mirror_patch, mirrored_event, worth_mirroring
from ak.core.types import Obj
from ak.kube.client import KubeClient, TokenBucket, path
from ak.kube.errors import Conflict, KubeError
from ak.kube.informer import Informer
from ak.kube.watchset import WatchSet
from ak.metrics import EVENTS_MIRRORED
from ak.pods.controller import PodController
from ak.pods.remote import RemoteCluster

log = logging.getLogger(__name__)

RATE, BURST = 20.0, 100


class EventMirror:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        pods: PodController,
        cluster: RemoteCluster,
        node_name: str,
    ) -> None:
        self.local = local
        self.remote = remote
        self.pods = pods
        self.cluster = cluster
        self.node_name = node_name
        self.bucket = TokenBucket(RATE, BURST)
        self.watches: WatchSet[str] = WatchSet()
        self._send: trio.MemorySendChannel[tuple[str, Obj]]
        self._send, self._receive = trio.open_memory_channel[tuple[str, Obj]](1000)
        self._started = datetime.now(UTC)

    async def run(self, mirrored_before: datetime | None = None) -> None:
        """``mirrored_before``: the previous AK's last heartbeat, when known
        before this one's first: its Events were mirrored by it."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watches.run)
            # Namespaces that came before the first run (``on_namespace`` follows
            # from construction, and a watch added before ``run`` waits for it).
            await self.cluster.remote_namespaces.synced.wait()
            for obj in list(self.cluster.remote_namespaces.values()):
                self.on_namespace(None, obj)
            await self._forward(mirrored_before)

    def on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        """Follows ``Informers.remote_namespaces``: one Event watch per namespace."""
        obj = new or old
        if obj is None:
            return
        rns = obj["metadata"]["name"]
        if new is None or new["metadata"].get("deletionTimestamp"):
            self.watches.remove(rns)
            return
        local_ns = ownership.local_namespace_of_namespace(obj, self.node_name)
        if rns in self.watches or local_ns is None:
            return
        informer = Informer(
            self.remote,
            path("events", namespace=rns),
            field_selector="involvedObject.kind=Pod",
            handler=lambda _old, ev: self._queue(local_ns, ev),
            name=f"remote events {rns}",
            metric_name="remote events",
        )
        self.watches.add(rns, informer)

    def _queue(self, local_ns: str, event: Obj | None) -> None:
        if event is None:
            return
        try:
            self._send.send_nowait((local_ns, event))
        except trio.WouldBlock:
            EVENTS_MIRRORED.labels("dropped").inc()

    async def _forward(self, mirrored_before: datetime | None) -> None:
        async for local_ns, event in self._receive:
            name = (event.get("involvedObject") or {}).get("name", "")
            pod = self.pods.local_pods.get(local_ns, name)
            if pod is None or not worth_mirroring(event, self._started, mirrored_before):
                continue
            if not self.bucket.try_take():
                EVENTS_MIRRORED.labels("dropped").inc()
                continue
            await self._write(mirrored_event(event, pod, self.node_name))

    async def _write(self, desired: Obj) -> None:
        ns = desired["metadata"]["namespace"]
        try:
            try:
                await self.local.create(path("events", namespace=ns), desired)
            except Conflict:
                name = desired["metadata"]["name"]
                await self.local.patch(
                    path("events", namespace=ns, name=name), mirror_patch(desired)
                )
            EVENTS_MIRRORED.labels("ok").inc()
        except KubeError as e:
            EVENTS_MIRRORED.labels("error").inc()
            log.debug("mirroring event %s: %s", desired["metadata"]["name"], e)
