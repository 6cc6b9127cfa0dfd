"""Pods bound to the virtual node, mirrored onto the remote cluster and back.

Two caches, one per side, each a list+watch of only this node's pods; one
keyed work queue; one ``sync`` that compares the two views of a pod and makes
at most the writes needed. Nothing acts before both caches are synced, so a
restart never deletes or re-creates what is already running.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from ak.core.errors import TranslationError
from ak.core.incarnation import Incarnation, adoption_patch, incarnation
from ak.core.labels import LABEL_NAMESPACE, LABEL_NODE
from ak.core.names import remote_namespace
from ak.core.namespaces import Template
from ak.core.placement import NONE as NO_PLACEMENT
from ak.core.placement import Placement
from ak.core.pods import new_ephemeral_containers, remote_pod_patch, to_remote_pod
from ak.core.status import (
    REASON_REMOTE_POD_MISSING,
    TERMINAL_PHASES,
    failed_status_for_missing_remote,
    local_status,
    pending_status_for_error,
    status_changed,
    status_patch,
)
from ak.deps.controller import DependencyController
from ak.events import EventRecorder
from ak.kube.client import STRATEGIC, KubeClient, path
from ak.kube.errors import ApiError, Conflict, Forbidden, Invalid, NotFound
from ak.kube.informer import Informer
from ak.metrics import CREATE_LATENCY, PODS, STATUS_LATENCY
from ak.pods.extension import PodExtension
from ak.pods.namespaces import RemoteNamespaces, is_deleting
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)

EPHEMERAL_RETRY = 10.0
"""Seconds until an ephemeral container that waits for a Secret/ConfigMap is tried again."""

SETTLE_QUIET = 10.0
"""Seconds a new pod's settling problems (``TranslationError.settling``) are
retried before they become an Event and the pod's status: the usual ones pass
in a second or two and would otherwise leave a Warning on a healthy pod."""

Obj = dict[str, Any]
PodKey = tuple[str, str]


def _now() -> datetime:
    return datetime.now(UTC)


def was_started(local: Obj) -> bool:
    """Whether a remote pod ever ran for this local pod (so its absence is a loss,
    not a pod still to create). Only remote status ever sets these fields."""
    status = local.get("status") or {}
    if status.get("startTime") or status.get("phase") == "Running" or status.get("podIP"):
        return True
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


@dataclass
class PodSettings:
    node_name: str
    node_label: str
    extra_env: list[Obj]
    workers: int = 16
    namespace_template: Template = field(default_factory=Template)
    placement: Placement = NO_PLACEMENT


class PodController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        settings: PodSettings,
        deps: DependencyController,
        events: EventRecorder,
        *,
        extensions: Sequence[PodExtension] = (),
    ) -> None:
        self.local = local
        self.remote = remote
        self.s = settings
        self.deps = deps
        self.events = events
        self.extensions = list(extensions)
        self.local_pods = Informer(
            local,
            "/api/v1/pods",
            field_selector=f"spec.nodeName={settings.node_name}",
            handler=self._on_local,
            name="local pods",
        )
        self.remote_pods = Informer(
            remote,
            "/api/v1/pods",
            label_selector=f"{LABEL_NODE}={settings.node_label}",
            handler=self._on_remote,
            name="remote pods",
        )
        self.remote_namespaces = Informer(
            remote,
            "/api/v1/namespaces",
            label_selector=f"{LABEL_NODE}={settings.node_label}",
            handler=self._on_namespace,
            name="remote namespaces",
        )
        self.namespaces = RemoteNamespaces(
            remote, settings.node_name, settings.namespace_template, self.remote_namespaces
        )
        self.queue: WorkQueue[PodKey] = WorkQueue("pods")
        self.ns_queue: WorkQueue[str] = WorkQueue("namespaces")
        # Others that follow AK's remote namespaces (the event mirror).
        self.namespace_listeners: list[Callable[[Obj | None, Obj | None], None]] = []
        self.local_by_ns: dict[str, set[str]] = defaultdict(set)
        self.remote_by_ns: dict[str, set[str]] = defaultdict(set)
        self.synced = trio.Event()
        # What was reported for a pod since it last went well, per incarnation
        # (uid, {(reason, message)}): once each, and a re-created pod of the
        # same name with the same failure is told again.
        self._errors: dict[PodKey, tuple[str, set[tuple[str, str]]]] = {}
        # For the latency histograms: when a pod was first seen, a remote change arrived.
        self._seen_at: dict[PodKey, float] = {}
        self._changed_at: dict[PodKey, float] = {}
        # Ephemeral containers the remote refused, per pod incarnation (uid).
        self._refused_ephemeral: dict[PodKey, tuple[str, set[str]]] = {}
        PODS.labels("local").set_function(self.local_pods.size)
        PODS.labels("remote").set_function(self.remote_pods.size)
        self.created = 0

    # -- event handlers: map every change to the local key it concerns ------------
    def _on_local(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if new is None:
            self.local_by_ns[ns].discard(name)
            self._seen_at.pop((ns, name), None)
        else:
            self.local_by_ns[ns].add(name)
            if old is None:
                self._seen_at[(ns, name)] = trio.current_time()
        # Only creations wait their turn: a change to a pod that already runs
        # remotely, or a deletion, goes before a burst of new pods.
        urgent = new is None or is_deleting(new) or name in self.remote_by_ns.get(ns, ())
        self.queue.add((ns, name), urgent=urgent)

    def _local_key(self, remote: Obj) -> PodKey | None:
        meta = remote["metadata"]
        ns = (meta.get("labels") or {}).get(LABEL_NAMESPACE)
        # A pod in a namespace that does not match its label is not ours to touch.
        if not ns or remote_namespace(self.s.node_name, ns) != meta.get("namespace"):
            return None
        return (ns, meta["name"])

    def _on_remote(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        key = self._local_key(obj) if obj else None
        if key is None:
            return
        if new is None:
            self.remote_by_ns[key[0]].discard(key[1])
        else:
            self.remote_by_ns[key[0]].add(key[1])
            self._changed_at.setdefault(key, trio.current_time())
        self.queue.add(key, urgent=True)

    def _on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        for listener in self.namespace_listeners:
            listener(old, new)
        obj = new or old
        if obj is not None:
            ns = (obj["metadata"].get("labels") or {}).get(LABEL_NAMESPACE)
            if ns:
                self.ns_queue.add(ns)

    # -- run ------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for informer in (self.local_pods, self.remote_pods, self.remote_namespaces):
                nursery.start_soon(informer.run)
            for informer in (self.local_pods, self.remote_pods, self.remote_namespaces):
                await informer.synced.wait()
            await self.deps.synced.wait()
            log.info(
                "caches synced: %d local pods, %d remote pods; reconciling",
                self.local_pods.size(),
                self.remote_pods.size(),
            )
            self.synced.set()
            # Claims of running pods first, then copies nobody claims may go.
            for pod in self.local_pods.values():
                if (
                    not is_deleting(pod)
                    and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
                ):
                    self.deps.track(pod)
            self.deps.gc_allowed.set()
            nursery.start_soon(self.ns_queue.run_workers, 2, self._sync_namespace)
            await self.queue.run_workers(self.s.workers, self.sync)

    def remote_ns(self, key: PodKey) -> str:
        return remote_namespace(self.s.node_name, key[0])

    async def sync(self, key: PodKey) -> float | None:
        ns, name = key
        local = self.local_pods.get(ns, name)
        remote = self.remote_pods.get(self.remote_ns(key), name)
        if local is None:
            await self._orphan(key, remote)
            return None
        which = incarnation(local, remote) if remote is not None else None
        if which is Incarnation.OTHER:
            assert remote is not None
            # A remote pod left by an earlier pod of the same name: replace it.
            await self._delete_remote(key, remote, None)
            return None
        if is_deleting(local):
            await self._terminate(key, local, remote)
            return None
        if remote is None:
            return await self._create_or_fail(key, local)
        if which is Incarnation.LEGACY:
            await self._adopt(key, local, remote)
            return None  # the watch brings the adopted pod back
        return await self._update(key, local, remote)

    # -- the cases -----------------------------------------------------------------
    async def _orphan(self, key: PodKey, remote: Obj | None) -> None:
        if remote is not None:
            if not is_deleting(remote):
                await self._delete_remote(key, remote, None)
            return
        self._release(key)
        self.ns_queue.add(key[0])

    async def _terminate(self, key: PodKey, local: Obj, remote: Obj | None) -> None:
        if remote is None:
            await self._final_delete(key, local)
            return
        if not is_deleting(remote):
            await self._delete_remote(
                key, remote, local["metadata"].get("deletionGracePeriodSeconds")
            )
        await self._write_status(key, local, local_status(remote, local))

    async def _adopt(self, key: PodKey, local: Obj, remote: Obj) -> None:
        """A remote pod the original AK made for this pod keeps running, now AK's."""
        patch = adoption_patch(local)
        patch["metadata"]["uid"] = remote["metadata"]["uid"]  # only that very pod
        try:
            await self.remote.patch(
                path("pods", namespace=remote["metadata"]["namespace"], name=key[1]), patch
            )
        except (NotFound, Conflict):
            return  # gone or replaced meanwhile: the watch brings the next state
        log.info("remote pod %s/%s adopted for %s/%s", remote["metadata"]["namespace"], *key)

    async def _final_delete(self, key: PodKey, local: Obj) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": local["metadata"]["uid"]},
        }
        try:
            await self.local.delete(path("pods", namespace=key[0], name=key[1]), body)
            log.info("pod %s/%s deleted", *key)
        except (NotFound, Conflict):
            pass  # already gone, or a new pod with the same name: its own sync handles it
        self._release(key)

    async def _delete_remote(self, key: PodKey, remote: Obj, grace: int | None) -> None:
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        body["preconditions"] = {"uid": remote["metadata"]["uid"]}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            await self.remote.delete(
                path("pods", namespace=remote["metadata"]["namespace"], name=key[1]), body
            )
            log.info("remote pod %s/%s deleting", remote["metadata"]["namespace"], key[1])
        except (NotFound, Conflict):
            pass

    async def _create_or_fail(self, key: PodKey, local: Obj) -> float | None:
        phase = (local.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            self._release(key)
            return None
        if was_started(local):
            log.warning("remote pod of %s/%s is gone; marking the local pod Failed", *key)
            await self._write_status(key, local, failed_status_for_missing_remote(local, _now()))
            await self.events.record(local, REASON_REMOTE_POD_MISSING, "the remote pod disappeared")
            self._release(key)
            return None
        try:
            desired = to_remote_pod(
                local,
                node_name=self.s.node_name,
                remote_namespace=self.remote_ns(key),
                extra_env=self.s.extra_env,
                placement=self.s.placement,
            )
            await self.namespaces.ensure(key[0])
            for reason, message in await self.deps.ensure(local):
                await self._tell(key, local, reason, message)
            for ext in self.extensions:
                desired = await ext.prepare(local, desired)
            await self.remote.create(path("pods", namespace=self.remote_ns(key)), desired)
        except TranslationError as e:
            if not (e.settling and self._young(key)):
                await self._report(key, local, e.reason, e.message)
            raise
        except Conflict as e:
            if e.already_exists:
                return 1.0  # created by an earlier attempt; the watch will show it
            raise
        except (Forbidden, Invalid) as e:
            await self._report(
                key, local, "ProviderCreateFailed", f"remote cluster refused the pod: {e.message}"
            )
            raise
        self.created += 1
        self._errors.pop(key, None)
        seen = self._seen_at.pop(key, None)
        if seen is not None:
            CREATE_LATENCY.observe(trio.current_time() - seen)
        log.info("remote pod %s/%s created for %s/%s", self.remote_ns(key), key[1], *key)
        return None

    def _young(self, key: PodKey) -> bool:
        seen = self._seen_at.get(key)
        return seen is not None and trio.current_time() - seen < SETTLE_QUIET

    async def _tell(self, key: PodKey, local: Obj, reason: str, message: str) -> bool:
        """One Warning Event per incarnation and distinct problem; True if it was new."""
        uid = local["metadata"]["uid"]
        known = self._errors.get(key)
        if known is None or known[0] != uid:
            known = self._errors[key] = (uid, set())
        if (reason, message) in known[1]:
            return False
        known[1].add((reason, message))
        log.warning("pod %s/%s: %s: %s", key[0], key[1], reason, message)
        await self.events.record(local, reason, message)
        return True

    async def _report(self, key: PodKey, local: Obj, reason: str, message: str) -> None:
        await self._tell(key, local, reason, message)
        await self._write_status(
            key, local, pending_status_for_error(local, reason, message, _now())
        )

    async def _update(self, key: PodKey, local: Obj, remote: Obj) -> float | None:
        try:
            desired = to_remote_pod(
                local,
                node_name=self.s.node_name,
                remote_namespace=self.remote_ns(key),
                extra_env=self.s.extra_env,
                placement=self.s.placement,
            )
            patch = remote_pod_patch(local, remote, desired)
        except TranslationError as e:
            log.warning("pod %s/%s: cannot update remote pod: %s", *key, e)
            patch = None
        if patch is not None:
            try:
                await self.remote.patch(
                    path("pods", namespace=self.remote_ns(key), name=key[1]), patch
                )
            except Invalid as e:
                await self.events.record(
                    local, "ProviderUpdateFailed", f"remote cluster refused the update: {e.message}"
                )
        again = await self._add_ephemeral_containers(key, local, remote)
        self.deps.track(local)
        for ext in self.extensions:
            ext.track(local)
        await self._write_status(key, local, local_status(remote, local))
        return again

    async def _add_ephemeral_containers(self, key: PodKey, local: Obj, remote: Obj) -> float | None:
        """``kubectl debug`` on the local pod: the same containers on the remote one.

        One PATCH per container, so one the remote refuses (PodSecurity, say)
        does not hold back the next; a refused one is reported once per pod.
        Returns when to look again if one waits for a Secret or ConfigMap.
        """
        uid = local["metadata"]["uid"]
        entry = self._refused_ephemeral.get(key)
        refused = entry[1] if entry is not None and entry[0] == uid else set()
        containers = [
            c
            for c in new_ephemeral_containers(local, remote, self.s.extra_env)
            if c["name"] not in refused
        ]
        if not containers:
            return None
        try:
            await self.deps.ensure(local)  # what their env refers to, before they start
            body: Obj = {"spec": {"ephemeralContainers": containers}}
            for ext in self.extensions:
                body = await ext.prepare(local, body)
        except TranslationError as e:
            # Not yet (a Secret one reads is missing): the pod's own sync goes on.
            log.warning("pod %s/%s: ephemeral containers wait: %s", *key, e.message)
            await self.events.record(local, e.reason, e.message)
            return EPHEMERAL_RETRY
        target = path(
            "pods", namespace=self.remote_ns(key), name=key[1], subresource="ephemeralcontainers"
        )
        for container in body["spec"]["ephemeralContainers"]:
            try:
                # Strategic merge: the list merges by name, so this one is added.
                patch = {"spec": {"ephemeralContainers": [container]}}
                await self.remote.patch(target, patch, content_type=STRATEGIC)
            except (Invalid, Forbidden) as e:
                refused.add(container["name"])
                self._refused_ephemeral[key] = (uid, refused)  # kept only for pods with one
                message = f"remote cluster refused ephemeral container {container['name']!r}"
                log.warning("pod %s/%s: %s: %s", *key, message, e.message)
                await self.events.record(local, "ProviderUpdateFailed", f"{message}: {e.message}")
                continue
            log.info("pod %s/%s: ephemeral container %s added remotely", *key, container["name"])
        return None

    async def _write_status(self, key: PodKey, local: Obj, new: Obj) -> None:
        old = local.get("status") or {}
        changed_at = self._changed_at.pop(key, None)
        if not status_changed(new, old):
            return
        # uid and resourceVersion make the patch conditional: a merge patch replaces
        # the conditions list whole, so writing from a stale view could drop a
        # condition another writer just added. On 409 the sync is retried once the
        # cache has caught up.
        meta = local["metadata"]
        body = {
            "metadata": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            "status": status_patch(old, new),
        }
        try:
            await self.local.patch(
                path("pods", namespace=key[0], name=key[1], subresource="status"), body
            )
        except NotFound:
            return
        except ApiError as e:
            log.info("status of %s/%s not written (%s); retrying", *key, e)
            if changed_at is not None:
                self._changed_at.setdefault(key, changed_at)
            raise
        if changed_at is not None:
            STATUS_LATENCY.observe(trio.current_time() - changed_at)

    def _release(self, key: PodKey) -> None:
        self._refused_ephemeral.pop(key, None)
        self._errors.pop(key, None)
        self._changed_at.pop(key, None)
        self.deps.release(key)
        for ext in self.extensions:
            ext.release(key)

    # -- remote namespaces ---------------------------------------------------------
    async def _sync_namespace(self, local_ns: str) -> float | None:
        in_use = bool(self.local_by_ns.get(local_ns) or self.remote_by_ns.get(local_ns))
        return await self.namespaces.sync(local_ns, in_use)
