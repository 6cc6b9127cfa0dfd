"""Reflect the local Services that select pods on the AK node into the remote namespaces.

A Service's "users" are the node's pods it selects: the Service controller
works them out from the pod path's cache (``PodController.local_pods``) and
claims the Service for each of them in a ``Replicator``
(``ak/deps/replicator.py``), which copies it, keeps the copy in step and
deletes it when the last user goes, as it does for Secrets and ConfigMaps.
What differs from those: the local side is one collection-wide watch (a node
identity may list and watch Services, as kubelets do; which Services are used
can only be told by looking at all of them), and claims follow pod labels and
Service selectors instead of pod specs.

A copy may be tried a moment before the pod path has created its remote
namespace; the create then fails and the replicator's queue retries it.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable

import trio

from ak.core import ownership
from ak.core.errors import TranslationError
from ak.core.labels import LABEL_NODE, LABEL_REPLICA, REPLICA_VALUE
from ak.core.services import (
    REASON_CONFLICT,
    REASON_UNSUPPORTED,
    is_own_service,
    selector,
    selects,
    service_needs_replace,
    service_needs_update,
    to_remote_service,
    unsupported,
)
from ak.core.status import TERMINAL_PHASES
from ak.core.types import Obj, PodKey
from ak.deps.replicator import Replicator, Source
from ak.events import EventRecorder
from ak.kube.client import KubeClient
from ak.kube.informer import Informer
from ak.kube.ondemand import OnDemand
from ak.kube.registry import Informers
from ak.metrics import REPLICATED
from ak.pods.controller import PodController
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)

ServiceKey = tuple[str, str]  # (local namespace, name)


class ServiceCopies:
    """The ``CopySpec`` of Service copies."""

    delete_unused = True

    def __init__(
        self, node_name: str, node_label: str, on_conflict: Callable[[ServiceKey, str], None]
    ) -> None:
        self.node_name = node_name
        self.node_label = node_label
        self.on_conflict = on_conflict

    def source(self, key: ServiceKey) -> Source:
        return Source(key[0], "services", key[1], key[1])

    def desired(self, key: ServiceKey, source: Obj, remote_namespace: str) -> Obj:
        return to_remote_service(
            source, node_name=self.node_name, remote_namespace=remote_namespace
        )

    def is_own(self, existing: Obj, key: ServiceKey) -> bool:
        return is_own_service(existing, self.node_label, key[0])

    needs_update = staticmethod(service_needs_update)
    needs_replace = staticmethod(service_needs_replace)

    def conflict(self, key: ServiceKey, remote_namespace: str) -> TranslationError:
        message = (
            f"a Service named {key[1]!r} already exists in remote namespace "
            f"{remote_namespace} and was not made by AK; it is left alone"
        )
        self.on_conflict(key, message)
        return TranslationError(REASON_CONFLICT, message)


def _counts(pod: Obj | None) -> bool:
    """A pod that may still serve: finished pods are never endpoints."""
    return pod is not None and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


def _labels(pod: Obj | None) -> dict[str, str] | None:
    return None if pod is None else (pod["metadata"].get("labels") or {})


class ServiceController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        node_name: str,
        node_label: str,
        *,
        pods: PodController,
        events: EventRecorder,
        informers: Informers,
    ) -> None:
        """Publishes the local Services on ``informers.local_services``."""
        self.informers = informers
        self.node_name = node_name
        self.pods = pods
        self.events = events
        self.local_services = Informer(
            local, "/api/v1/services", handler=self._on_local, name="local services"
        )
        self.copies = Informer(
            remote,
            "/api/v1/services",
            label_selector=f"{LABEL_NODE}={node_label},{LABEL_REPLICA}={REPLICA_VALUE}",
            handler=self._on_copy,
            name="remote services",
        )
        REPLICATED.labels("Service").set_function(self.copies.size)
        # The copies' watch is open only while there are copies or claims.
        self.copies_watch = OnDemand(
            self.copies, lambda: self.copies.size() > 0 or bool(self.replicator.users)
        )
        self.replicator: Replicator[ServiceKey] = Replicator(
            local,
            remote,
            node_name,
            ServiceCopies(node_name, node_label, self._on_conflict),
            lambda key, rns: self.copies.get(rns, key[1]),
            name="services",
            lookup=lambda key: self.local_services.get(*key),
            on_claim=self.copies_watch.poke,
        )
        self.by_ns: dict[str, set[str]] = defaultdict(set)
        # Which Services select which pods is worked out here, one Service at a time.
        self.queue: WorkQueue[ServiceKey] = WorkQueue("service-selection")
        # Per Service: (uid, problems) last told in a Warning Event.
        self._told: dict[ServiceKey, tuple[str, tuple[str, ...]]] = {}
        # Copies refused because a remote Service AK did not make has the name,
        # told once per Service incarnation by a task of their own: the
        # replicator finds them where it cannot await, and retries with backoff.
        self._conflicts, self._conflicts_in = trio.open_memory_channel[tuple[ServiceKey, str]](
            math.inf
        )
        self._told_conflict: dict[ServiceKey, str] = {}

    # -- what changed ------------------------------------------------------------------
    def _on_local(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.informers.local_services.publish(old, new)
        if new is None:
            self.by_ns[key[0]].discard(key[1])
        else:
            self.by_ns[key[0]].add(key[1])
        self.queue.add(key)

    def on_pod(self, old: Obj | None, new: Obj | None) -> None:
        # Status updates are most of a pod's events and change no selection.
        if _labels(old) == _labels(new) and _counts(old) == _counts(new):
            return
        ns = (new or old or {})["metadata"]["namespace"]
        for name in self.by_ns.get(ns, ()):
            self.queue.add((ns, name))

    def _on_conflict(self, key: ServiceKey, message: str) -> None:
        self._conflicts.send_nowait((key, message))

    def _on_copy(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = ownership.local_key(obj, self.node_name)
        if key is not None:
            # Drift, garbage, or a deleted copy still used: the replicator decides.
            self.replicator.queue.add(key)

    # -- run -----------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.local_services.run)
            nursery.start_soon(self.copies_watch.run)
            await self.local_services.synced.wait()
            await self.copies.synced.wait()
            await self.pods.synced.wait()
            # Every used Service claimed before anything unclaimed may be deleted.
            for service in self.local_services.values():
                meta = service["metadata"]
                self._select((meta["namespace"], meta["name"]), service)
            self.replicator.gc_allowed.set()
            for copy in self.copies.values():
                self._on_copy(None, copy)
            nursery.start_soon(self.queue.run_workers, 2, self._reselect)
            nursery.start_soon(self._tell_conflicts)
            await self.replicator.run(4)

    def _select(self, key: ServiceKey, service: Obj | None) -> bool:
        """Claim the Service for the node's pods it selects, unclaim the rest; whether used."""
        sel = selector(service) if service is not None else {}
        matched: set[PodKey] = set()
        if sel:
            for name in list(self.pods.local_by_ns.get(key[0], ())):
                pod = self.pods.local_pods.get(key[0], name)
                if _counts(pod) and pod is not None and selects(sel, pod):
                    matched.add((key[0], name))
        return self.replicator.claim_exactly(key, matched)

    async def _reselect(self, key: ServiceKey) -> float | None:
        service = self.local_services.get(*key)
        used = self._select(key, service)
        if service is None:
            self._told.pop(key, None)
            self._told_conflict.pop(key, None)
        elif used:
            await self._tell(key, service)
        return None

    async def _tell_conflicts(self) -> None:
        async for key, message in self._conflicts_in:
            service = self.local_services.get(*key)
            uid = service["metadata"].get("uid", "") if service is not None else ""
            if service is not None and self._told_conflict.get(key) != uid:
                self._told_conflict[key] = uid
                log.warning("service %s/%s: %s", key[0], key[1], message)
                await self.events.record(service, REASON_CONFLICT, message)

    async def _tell(self, key: ServiceKey, service: Obj) -> None:
        """One Warning Event per Service incarnation and set of problems."""
        told = (service["metadata"].get("uid", ""), tuple(unsupported(service)))
        if self._told.get(key) == told:
            return
        self._told[key] = told
        if told[1]:
            message = "; ".join(told[1])
            log.warning("service %s/%s: %s", key[0], key[1], message)
            await self.events.record(service, REASON_UNSUPPORTED, message)
