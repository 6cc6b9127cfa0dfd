"""Pods bound to the virtual node, run by a provider, their status brought back.

The generic half of the pod path, like virtual-kubelet's ``PodController``: a
list+watch of the pods bound to this node, one keyed work queue fed by that
watch and by the provider's (``ak/pods/provider.py``), and one ``sync`` that
compares the local pod with its twin and decides. Nothing acts before both
views are complete, so a restart never deletes or re-creates what runs.

The rules, all in ``sync``:

* local pod gone: stop the twin, then forget the pod;
* twin made for another pod of the same name (``core/incarnation``): stop it;
* local pod deleting: stop the twin with the pod's grace period, mirror its
  status while it stops, then delete the local pod for good;
* no twin: create one, unless the pod finished, or once had a twin (then it
  is lost: the pod fails, so its controller replaces it);
* otherwise: update the twin (the provider adopts one the original AK made),
  mirror its status.

Failures are reported on the pod (status and one Warning Event per problem
and pod incarnation) and retried with backoff by the queue.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

import trio

from ak.core.errors import Notice, TranslationError
from ak.core.incarnation import Incarnation, incarnation
from ak.core.pod_addresses import with_address
from ak.core.status import (
    REASON_REMOTE_POD_MISSING,
    TERMINAL_PHASES,
    failed_status_for_missing_remote,
    is_plain_pending,
    pending_status_for_error,
    status_changed,
    status_patch,
)
from ak.core.types import Obj, PodKey
from ak.events import EventRecorder
from ak.kube.client import KubeClient, path
from ak.kube.errors import ApiError, Conflict, NotFound
from ak.kube.informer import Informer
from ak.kube.registry import Informers
from ak.metrics import CREATE_LATENCY, PODS, STATUS_LATENCY
from ak.pods.namespaces import is_deleting
from ak.pods.provider import PodProvider
from ak.proxy.addresses import PodAddresses
from ak.sync.queue import RetrySoon, WorkQueue

log = logging.getLogger(__name__)

SETTLE_QUIET = 10.0
"""Seconds a new pod's settling problems (``TranslationError.settling``) are
retried before they become an Event and the pod's status: the usual ones pass
in a second or two and would otherwise leave a Warning on a healthy pod."""
STALE_RETRY = 0.05
PENDING_QUIET = 2.0
"""How long a just-created pod's plain Pending status ("ContainerCreating") waits
to be folded into the next one; an error (image pull, unschedulable) is written at once."""


def _now() -> datetime:
    return datetime.now(UTC)


class LocalWrites(Protocol):
    """The controller's writes to the local cluster (``KubeLocalWrites``); the
    unit tests keep them in memory to check the rules in milliseconds."""

    async def status(self, local: Obj, patch: Obj) -> None:
        """Merge-patch the pod's status, conditional on its uid and resourceVersion;
        NotFound when the pod is gone, ApiError (409...) to retry."""
        ...

    async def delete_for_good(self, local: Obj) -> None:
        """Delete the pod with grace 0 (its containers have stopped), if it is still
        this incarnation."""
        ...

    async def event(self, local: Obj, reason: str, message: str) -> None:
        """A Warning Event on the pod."""
        ...


class KubeLocalWrites:
    def __init__(self, client: KubeClient, events: EventRecorder) -> None:
        self.client = client
        self.events = events

    async def status(self, local: Obj, patch: Obj) -> None:
        # uid and resourceVersion make the patch conditional: a merge patch replaces
        # the conditions list whole, so writing from a stale view could drop a
        # condition another writer just added. On 409 the sync is retried once the
        # cache has caught up.
        meta = local["metadata"]
        body = {
            "metadata": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            "status": patch,
        }
        where = path("pods", namespace=meta["namespace"], name=meta["name"], subresource="status")
        await self.client.patch(where, body)

    async def delete_for_good(self, local: Obj) -> None:
        meta = local["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            await self.client.delete(
                path("pods", namespace=meta["namespace"], name=meta["name"]), body
            )
            log.info("pod %s/%s deleted", meta["namespace"], meta["name"])
        except (NotFound, Conflict):
            pass  # already gone, or a new pod with the same name: its own sync handles it

    async def event(self, local: Obj, reason: str, message: str) -> None:
        await self.events.record(local, reason, message)


def was_started(local: Obj) -> bool:
    """Whether a twin ever ran for this local pod (so its absence is a loss,
    not a pod still to create). Only the provider's status sets these fields."""
    status = local.get("status") or {}
    if status.get("startTime") or status.get("phase") == "Running" or status.get("podIP"):
        return True
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


class PodController:
    def __init__(
        self,
        local: KubeClient,
        node_name: str,
        provider: PodProvider,
        writes: LocalWrites,
        *,
        informers: Informers,
        workers: int = 16,
        addresses: PodAddresses | None = None,
    ) -> None:
        """Publishes the node's local pods on ``informers.local_pods``."""
        self.informers = informers
        self.provider = provider
        self.addresses = addresses
        self.writes = writes
        self.workers = workers
        self.local_pods = Informer(
            local,
            "/api/v1/pods",
            field_selector=f"spec.nodeName={node_name}",
            handler=self._on_local,
            name="local pods",
        )
        self.queue: WorkQueue[PodKey] = WorkQueue("pods")
        self.local_by_ns: dict[str, set[str]] = defaultdict(set)
        self.synced = trio.Event()
        # What was reported for a pod since it last went well, per incarnation
        # (uid, {(reason, message)}): once each, and a re-created pod of the
        # same name with the same failure is told again.
        self._told: dict[PodKey, tuple[str, set[Notice]]] = {}
        # For the latency histograms: when a pod was first seen, a twin changed.
        self._seen_at: dict[PodKey, float] = {}
        self._changed_at: dict[PodKey, float] = {}
        # Pods created remotely within PENDING_QUIET: when, for ``_hold_back``.
        self._created_at: dict[PodKey, float] = {}
        # Pods deleted for good whose removal the watch has not shown yet: uid.
        self._deleted: dict[PodKey, str] = {}
        # The status AK last wrote per pod. The watch brings each write back,
        # and a sync on that echo finds nothing to do; virtual-kubelet drops
        # status-only updates altogether, but another writer's (the node
        # lifecycle controller marking pods not Ready) must be corrected, so
        # only a status-only change to what AK wrote is skipped. Matched by
        # content, not by the write's resourceVersion: the echo often arrives
        # before the write's response.
        self._wrote: dict[PodKey, Obj] = {}
        # Local keys whose twin exists, as the provider's notifications tell:
        # a set lookup decides a local change's urgency (``get`` decodes a pod).
        self._twins: set[PodKey] = set()
        PODS.labels("local").set_function(self.local_pods.size)

    # -- what changed: map every change to the local key it concerns ----------------
    def _on_local(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        self.informers.local_pods.publish(old, new)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if new is None:
            self.local_by_ns[key[0]].discard(key[1])
            self._seen_at.pop(key, None)
        else:
            self.local_by_ns[key[0]].add(key[1])
            if old is None:
                self._seen_at[key] = trio.current_time()
        if old is not None and new is not None and self._consume_echo(key, old, new):
            return
        # Only creations wait their turn: a change to a pod that already runs
        # remotely, or a deletion, goes before a burst of new pods.
        urgent = new is None or is_deleting(new) or key in self._twins
        self.queue.add(key, urgent=urgent)

    def _consume_echo(self, key: PodKey, old: Obj, new: Obj) -> bool:
        """Whether ``new`` is the echo of AK's last status write; if so, that write is forgotten."""
        wrote = self._wrote.get(key)
        if (
            wrote is None
            or not only_status_changed(old, new)
            or status_changed(wrote, new.get("status") or {})
        ):
            return False
        # One write, one echo: a settled pod keeps no copy of its status here
        # (decoded, a Running status with five conditions and one container
        # takes ~4.8 KB, measured).
        del self._wrote[key]
        return True

    def _on_twin(self, key: PodKey, twin: Obj | None) -> None:
        if twin is None:
            self._twins.discard(key)
        else:
            self._twins.add(key)
            self._changed_at.setdefault(key, trio.current_time())
        self.queue.add(key, urgent=True)

    # -- what the provider may read of the local side (``LocalPods``) ---------------
    def live(self) -> Iterator[Obj]:
        for pod in self.local_pods.values():
            if not is_deleting(pod) and _phase(pod) not in TERMINAL_PHASES:
                yield pod

    def in_use(self, local_ns: str) -> bool:
        return bool(self.local_by_ns.get(local_ns))

    # -- run ------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.local_pods.run)
            nursery.start_soon(self.provider.run, self._on_twin, self)
            await self.local_pods.synced.wait()
            await self.provider.synced.wait()
            log.info("caches synced: %d local pods; reconciling", self.local_pods.size())
            if self.addresses is not None:
                for pod in self.local_pods.values():
                    self.addresses.adopt(pod)
            self.synced.set()
            await self.queue.run_workers(self.workers, self.sync)

    async def sync(self, key: PodKey) -> float | None:
        local = self.local_pods.get(*key)
        twin = self.provider.get(key)
        if local is None:
            if twin is None:
                # Again after a final delete: only now is the pod out of the cache,
                # so only now can its namespace be found empty (and linger, then go).
                self._release(key)
            elif not is_deleting(twin):
                await self.provider.delete(key, twin, None)
            return None
        which = incarnation(local, twin) if twin is not None else None
        if twin is not None and which is Incarnation.OTHER:
            await self.provider.delete(key, twin, None)  # an earlier pod's: replace it
            return None
        if is_deleting(local):
            await self._terminate(key, local, twin)
            return None
        if twin is None:
            return await self._create_or_fail(key, local)
        outcome = await self.provider.update(local, twin)
        for notice in outcome.notices:
            await self._tell(key, local, notice)
        status = self._status(key, local, twin)
        held = self._hold_back(key, local, status)
        if held is None:
            await self._write_status(key, local, status)
            return outcome.again
        return held if outcome.again is None else min(held, outcome.again)

    # -- the cases -----------------------------------------------------------------
    async def _terminate(self, key: PodKey, local: Obj, twin: Obj | None) -> None:
        if twin is None:
            await self._final_delete(key, local)
            return
        if not is_deleting(twin):
            grace = local["metadata"].get("deletionGracePeriodSeconds")
            await self.provider.delete(key, twin, grace)
        await self._write_status(key, local, self._status(key, local, twin))

    def _status(self, key: PodKey, local: Obj, twin: Obj) -> Obj:
        """The local status the twin's makes, with the pod's local address if it has one."""
        status = self.provider.status(local, twin)
        if self.addresses is not None:
            address = self.addresses.address(key, local)
            if address is not None:
                status = with_address(status, address)
        return status

    async def _final_delete(self, key: PodKey, local: Obj) -> None:
        uid = local["metadata"]["uid"]
        # Events about the pod that were already queued arrive before the watch
        # reports it gone; deleting it again would only earn a 404.
        if self._deleted.get(key) == uid:
            return
        await self.writes.delete_for_good(local)
        self._release(key)
        self._deleted[key] = uid

    async def _create_or_fail(self, key: PodKey, local: Obj) -> float | None:
        if _phase(local) in TERMINAL_PHASES:
            self._release(key)
            return None
        if was_started(local):
            log.warning("remote pod of %s/%s is gone; marking the local pod Failed", *key)
            await self._write_status(key, local, failed_status_for_missing_remote(local, _now()))
            await self.writes.event(local, REASON_REMOTE_POD_MISSING, "the remote pod disappeared")
            self._release(key)
            return None
        try:
            outcome = await self.provider.create(local)
        except TranslationError as e:
            if not (e.settling and self._young(key)):
                await self._report(key, local, e.reason, e.message)
            raise
        for notice in outcome.notices:
            await self._tell(key, local, notice)
        if outcome.again is None:
            self._told.pop(key, None)
            self._created_at[key] = trio.current_time()
            seen = self._seen_at.pop(key, None)
            if seen is not None:
                CREATE_LATENCY.observe(trio.current_time() - seen)
        return outcome.again

    def _hold_back(self, key: PodKey, local: Obj, status: Obj) -> float | None:
        """Seconds to hold back a just-created pod's plain Pending status, or None
        to write it now: most pods run within PENDING_QUIET, and then one status
        write (Running) says all that two would have."""
        created = self._created_at.get(key)
        if created is None:
            return None
        left = created + PENDING_QUIET - trio.current_time()
        if left <= 0 or _phase(local) not in (None, "Pending") or not is_plain_pending(status):
            del self._created_at[key]
            return None
        # Status latency counts from the change that is finally written.
        self._changed_at.pop(key, None)
        return left

    # -- telling the user ---------------------------------------------------------
    def _young(self, key: PodKey) -> bool:
        seen = self._seen_at.get(key)
        return seen is not None and trio.current_time() - seen < SETTLE_QUIET

    async def _tell(self, key: PodKey, local: Obj, notice: Notice) -> None:
        """One Warning Event per pod incarnation and distinct problem."""
        uid = local["metadata"]["uid"]
        told = self._told.get(key)
        if told is None or told[0] != uid:
            told = self._told[key] = (uid, set())
        if notice in told[1]:
            return
        told[1].add(notice)
        log.warning("pod %s/%s: %s: %s", key[0], key[1], notice.reason, notice.message)
        await self.writes.event(local, notice.reason, notice.message)

    async def _report(self, key: PodKey, local: Obj, reason: str, message: str) -> None:
        await self._tell(key, local, Notice(reason, message))
        await self._write_status(
            key, local, pending_status_for_error(local, reason, message, _now())
        )

    async def _write_status(self, key: PodKey, local: Obj, new: Obj) -> None:
        old = local.get("status") or {}
        changed_at = self._changed_at.pop(key, None)
        if not status_changed(new, old):
            return
        patch = status_patch(old, new)
        log.debug(
            "status of %s/%s: %s -> %s (%s)",
            *key,
            old.get("phase"),
            new.get("phase"),
            ", ".join(sorted(patch)),
        )
        self._wrote[key] = new  # before the write: its echo may come before its answer
        try:
            await self.writes.status(local, patch)
        except NotFound:
            return
        except ApiError as e:
            self._wrote.pop(key, None)
            if changed_at is not None:
                self._changed_at.setdefault(key, changed_at)
            if isinstance(e, Conflict):
                # Written from a cached pod older than our own last write (in a
                # burst, the held-back Pending and the Running write can cross):
                # the watch brings the newer pod within milliseconds.
                raise RetrySoon(STALE_RETRY, f"status from a stale view ({e})") from e
            log.info("status of %s/%s not written (%s); retrying", *key, e)
            raise
        if changed_at is not None:
            STATUS_LATENCY.observe(trio.current_time() - changed_at)

    def _release(self, key: PodKey) -> None:
        self._wrote.pop(key, None)
        self._deleted.pop(key, None)
        self._told.pop(key, None)
        self._created_at.pop(key, None)
        self._changed_at.pop(key, None)
        if self.addresses is not None:
            self.addresses.release(key)
        self.provider.release(key)


def only_status_changed(old: Obj, new: Obj) -> bool:
    """Whether ``new`` differs from ``old`` in its status (and resourceVersion) only."""
    if old.get("spec") != new.get("spec"):
        return False
    m_old, m_new = old.get("metadata") or {}, new.get("metadata") or {}
    keys = (m_old.keys() | m_new.keys()) - {"resourceVersion", "managedFields"}
    return all(m_old.get(k) == m_new.get(k) for k in keys)


def _phase(pod: Obj) -> str | None:
    phase: str | None = (pod.get("status") or {}).get("phase")
    return phase
