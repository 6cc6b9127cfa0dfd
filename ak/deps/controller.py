"""Replicate the Secrets and ConfigMaps pods use into their remote namespaces.

AK acts with a kubelet's identity locally, so it may read only the objects of
pods bound to it, one by one: each object in use gets its own watch by name
(as the kubelet's watch-based manager does), never a namespace-wide list.
Remote copies are found by AK's labels; a copy no pod uses is deleted.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from typing import Any

import trio

from ak.core.deps import (
    Kind,
    Ref,
    copy_needs_replace,
    copy_needs_update,
    is_own_copy,
    missing_reason,
    optional_missing_reason,
    pod_dependencies,
    to_remote_copy,
)
from ak.core.errors import Notice, TranslationError
from ak.core.labels import LABEL_NAMESPACE, LABEL_NODE, LABEL_REPLICA, REPLICA_VALUE
from ak.core.names import remote_namespace
from ak.kube.client import KubeClient, path
from ak.kube.errors import Conflict, NotFound
from ak.kube.informer import Informer
from ak.kube.watchset import WatchSet
from ak.metrics import REPLICATED
from ak.sync.keyed import KeyedLock
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PodKey = tuple[str, str]
RefKey = tuple[str, Kind, str]  # (local namespace, kind, name)
_RESOURCE: dict[Kind, str] = {"Secret": "secrets", "ConfigMap": "configmaps"}
SYNC_TIMEOUT = 15.0


class DependencyController:
    def __init__(
        self, local: KubeClient, remote: KubeClient, node_name: str, node_label: str
    ) -> None:
        self.local = local
        self.remote = remote
        self.node_name = node_name
        self.node_label = node_label
        selector = f"{LABEL_NODE}={node_label},{LABEL_REPLICA}={REPLICA_VALUE}"
        self.copies = {
            kind: Informer(
                remote,
                f"/api/v1/{res}",
                label_selector=selector,
                handler=functools.partial(self._on_copy, kind),
                name=f"remote {res}",
            )
            for kind, res in _RESOURCE.items()
        }
        for kind, informer in self.copies.items():
            REPLICATED.labels(kind).set_function(informer.size)
        self.users: dict[RefKey, set[PodKey]] = defaultdict(set)
        # pod -> (uid and ephemeral container names, refs)
        self.pod_refs: dict[PodKey, tuple[str, set[RefKey]]] = {}
        self.optional: dict[RefKey, bool] = {}
        self.watches: WatchSet[RefKey] = WatchSet()
        self.queue: WorkQueue[RefKey] = WorkQueue("dependencies")
        # Pod workers (ensure) and this queue's workers write the same copies.
        self.locks: KeyedLock[RefKey] = KeyedLock()
        self.gc_allowed = trio.Event()  # set once the pod controller tracked every pod
        self.synced = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watches.run)
            for informer in self.copies.values():
                nursery.start_soon(informer.run)
            for informer in self.copies.values():
                await informer.synced.wait()
            self.synced.set()
            nursery.start_soon(self._collect_garbage_when_allowed)
            await self.queue.run_workers(8, self._sync)

    # -- bookkeeping called by the pod controller -------------------------------
    def track(self, pod: Obj) -> list[Ref]:
        """Record what ``pod`` uses; start watching what is new. Cheap when known."""
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        known = self.pod_refs.get(key)
        # A pod's spec is immutable but for its ephemeral containers (kubectl debug).
        ephemeral = (pod.get("spec") or {}).get("ephemeralContainers") or []
        signature = "/".join([meta.get("uid", ""), *(c.get("name", "") for c in ephemeral)])
        if known and known[0] == signature:
            return []
        if known:
            self.release(key)
        refs = pod_dependencies(pod)
        ref_keys: set[RefKey] = set()
        for ref in refs:
            rk = (key[0], ref.kind, ref.name)
            ref_keys.add(rk)
            self.users[rk].add(key)
            self.optional[rk] = self.optional.get(rk, True) and ref.optional
            self._watch(rk)
        self.pod_refs[key] = (signature, ref_keys)
        return refs

    def release(self, key: PodKey) -> None:
        """The pod no longer runs remotely: drop its claims; unused copies go."""
        known = self.pod_refs.pop(key, None)
        if not known:
            return
        for rk in known[1]:
            users = self.users.get(rk)
            if users is not None:
                users.discard(key)
                if not users:
                    del self.users[rk]
                    self.queue.add(rk)

    # -- the pod preparer (ak/pods/prepare.py) -------------------------------------
    async def prepare(self, local: Obj, desired: Obj, notices: list[Notice]) -> Obj:
        notices.extend(await self.ensure(local))
        return desired

    def tracked_all(self) -> None:
        self.gc_allowed.set()

    async def ensure(self, pod: Obj) -> list[Notice]:
        """Replicate everything ``pod`` needs before it is created remotely.

        Raises TranslationError when a required object does not exist locally,
        with virtual-kubelet's reasons (``MandatorySecretNotFound``...), which
        users' alerts know. Returns a Notice for each optional object that is
        missing: the pod runs without it, but a kubelet would say so.
        """
        self.track(pod)
        ns = pod["metadata"]["namespace"]
        _, ref_keys = self.pod_refs[(ns, pod["metadata"]["name"])]
        missing: list[RefKey] = []
        notices: list[Notice] = []
        for rk in sorted(ref_keys):
            informer = self.watches.get(rk)
            assert informer is not None, "track() watches every reference"
            with trio.move_on_after(SYNC_TIMEOUT):
                await informer.synced.wait()
            if not informer.synced.is_set():
                raise TranslationError(
                    "DependencyUnavailable", f"cannot read {rk[1]} {ns}/{rk[2]} yet", settling=True
                )
            if informer.get(ns, rk[2]) is None:
                if not self.optional.get(rk, False):
                    missing.append(rk)
                else:
                    notices.append(
                        Notice(
                            optional_missing_reason(rk[1]), f"{rk[1].lower()} {rk[2]!r} not found"
                        )
                    )
                continue
            await self._sync(rk)
        if missing:
            names = ", ".join(f"{kind} {name!r}" for _, kind, name in missing)
            raise TranslationError(
                missing_reason([kind for _, kind, _ in missing]),
                f"{names} not found in namespace {ns}; the pod starts once it exists",
            )
        return notices

    # -- watches ----------------------------------------------------------------
    def _watch(self, rk: RefKey) -> None:
        if rk in self.watches:
            return
        ns, kind, name = rk
        informer = Informer(
            self.local,
            path(_RESOURCE[kind], namespace=ns),
            field_selector=f"metadata.name={name}",
            handler=lambda old, new: self.queue.add(rk),
            name=f"local {kind} {ns}/{name}",
            metric_name=f"local {kind}",
        )
        self.watches.add(rk, informer)

    def _unwatch(self, rk: RefKey) -> None:
        self.watches.remove(rk)
        self.optional.pop(rk, None)

    def _on_copy(self, kind: Kind, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        meta = obj["metadata"]
        local_ns = meta.get("labels", {}).get(LABEL_NAMESPACE, "")
        if remote_namespace(self.node_name, local_ns) == meta.get("namespace"):
            # Garbage, drift from the source, or a deleted copy still needed: sync decides.
            self.queue.add((local_ns, kind, meta["name"]))

    async def _collect_garbage_when_allowed(self) -> None:
        await self.gc_allowed.wait()
        for kind, informer in self.copies.items():
            for obj in list(informer.values()):
                local_ns = obj["metadata"].get("labels", {}).get(LABEL_NAMESPACE, "")
                rk = (local_ns, kind, obj["metadata"]["name"])
                if rk not in self.users:
                    self.queue.add(rk)

    # -- reconcile one object -----------------------------------------------------
    async def _sync(self, rk: RefKey) -> float | None:
        async with self.locks.hold(rk):
            return await self._sync_locked(rk)

    async def _sync_locked(self, rk: RefKey) -> float | None:
        ns, kind, name = rk
        rns = remote_namespace(self.node_name, ns)
        copy_path = path(_RESOURCE[kind], namespace=rns, name=name)
        current = self.copies[kind].get(rns, name)
        if rk not in self.users:
            self._unwatch(rk)
            if current is not None and self.gc_allowed.is_set():
                try:
                    await self.remote.delete(copy_path)
                    log.info("deleted unused %s copy %s/%s", kind, rns, name)
                except NotFound:
                    pass
            return None
        w = self.watches.get(rk)
        source = w.get(ns, name) if w else None
        if source is None:
            # Deleted or not there yet: a running pod keeps what it has, like on a kubelet.
            return None
        desired = to_remote_copy(
            source, node_name=self.node_name, local_namespace=ns, remote_namespace=rns, kind=kind
        )
        if current is None:
            current = await self._create_copy(rk, rns, desired)
            if current is None:
                return None
        if copy_needs_replace(desired, current):
            await self.remote.delete(copy_path)
            await self.remote.create(path(_RESOURCE[kind], namespace=rns), desired)
        elif copy_needs_update(desired, current):
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.remote.replace(copy_path, desired)
            log.info("updated %s copy %s/%s", kind, rns, name)
        return None

    async def _create_copy(self, rk: RefKey, rns: str, desired: Obj) -> Obj | None:
        """Create the copy; if one exists already, return it when it is AK's to manage.

        An existing copy with this node's labels is AK's own (its cache has not
        seen it yet, e.g. made by the previous process or a standby) or the
        original AK's, which a user migrating keeps running: both are adopted
        and brought in line. Anything else belongs to someone on the remote
        cluster and is never touched.
        """
        ns, kind, name = rk
        try:
            await self.remote.create(path(_RESOURCE[kind], namespace=rns), desired)
            log.info("replicated %s %s/%s", kind, ns, name)
            return None
        except Conflict as e:
            if not e.already_exists:
                raise
        existing = await self.remote.get(path(_RESOURCE[kind], namespace=rns, name=name))
        if not is_own_copy(existing, self.node_label, ns):
            raise TranslationError(
                "DependencyConflict",
                f"a {kind} named {name!r} already exists in remote namespace {rns} "
                "and was not made by AK",
            )
        log.info("adopting existing %s copy %s/%s", kind, rns, name)
        return existing
