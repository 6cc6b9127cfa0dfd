"""Local objects kept as copies in remote namespaces, while pods claim them.

Shared by the Secret/ConfigMap copies pods read (``ak/deps/controller.py``),
the local CA bundle (``ak/tokens/rootca.py``) and the Services that select
pods (``ak/services/controller.py``); what differs between them is a
``CopySpec``. What is shared:

* claims: which pods use an object; the last pod gone, its copy may go;
* one local watch per object, by name: a kubelet identity may read only the
  objects of pods bound to it, one by one, never a namespace-wide list (a
  caller that watches the whole collection anyway, as Services are, passes
  ``lookup`` instead);
* one work queue and one lock per object, since the pod path (``sync`` from
  a pod worker, before its pod is created) and the queue write the same copy;
* one ``sync``: create the copy, or adopt one that is AK's (its cache has not
  seen it yet, or the original AK made it), update or replace it when the
  source changed, delete it when unclaimed (if the spec says so); a copy
  someone else made under that name is never touched.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import trio

from ak.core.errors import TranslationError
from ak.core.names import remote_namespace
from ak.core.types import Obj, PodKey
from ak.kube.client import KubeClient, path
from ak.kube.errors import Conflict, NotFound
from ak.kube.informer import Informer
from ak.kube.watchset import WatchSet
from ak.sync.keyed import KeyedLock
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

SYNC_TIMEOUT = 15.0
"""Seconds a pod waits for the first answer of a new watch before trying later."""


@dataclass(frozen=True)
class Source:
    """A local object, and the remote name of its copy."""

    namespace: str
    resource: str  # "secrets", "configmaps"
    name: str
    copy_name: str
    group_version: str = "v1"


class CopySpec(Protocol[K_contra]):
    delete_unused: bool
    """Delete a copy no pod claims (else it goes with its remote namespace)."""

    def source(self, key: K_contra) -> Source: ...

    def desired(self, key: K_contra, source: Obj, remote_namespace: str) -> Obj: ...

    def is_own(self, existing: Obj, key: K_contra) -> bool:
        """Whether an object found under the copy's name is AK's to manage."""
        ...

    def needs_update(self, desired: Obj, current: Obj) -> bool: ...

    def needs_replace(self, desired: Obj, current: Obj) -> bool:
        """The change cannot be made in place (immutable content, a Secret's type)."""
        ...

    def conflict(self, key: K_contra, remote_namespace: str) -> TranslationError:
        """The error for a foreign object under the copy's name."""
        ...


class SourceUnavailable(Exception):
    """The local object cannot be read yet (its watch has not answered)."""


class Replicator(Generic[K]):
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        node_name: str,
        spec: CopySpec[K],
        current: Callable[[K, str], Obj | None],
        *,
        name: str,
        lookup: Callable[[K], Obj | None] | None = None,
        on_claim: Callable[[], None] = lambda: None,
    ) -> None:
        """``current(key, remote namespace)``: the copy as the caller's cache sees it;
        ``lookup(key)``: the local object from the caller's cache (then claims
        open no watch of their own); ``on_claim``: told of each claim, as the
        copies' watch may be closed (ak/kube/ondemand.py)."""
        self.local = local
        self.remote = remote
        self.node_name = node_name
        self.spec = spec
        self.current = current
        self.lookup = lookup
        self.users: dict[K, set[PodKey]] = defaultdict(set)
        self.watches: WatchSet[K] = WatchSet()
        self.queue: WorkQueue[K] = WorkQueue(name)
        self.locks: KeyedLock[K] = KeyedLock()
        self.gc_allowed = trio.Event()  # set once every live pod has claimed what it uses
        self.on_claim = on_claim

    async def run(self, workers: int) -> None:
        # After a restart of the task, look at every object in use again.
        for key in self.users:
            self.queue.add(key)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watches.run)
            await self.queue.run_workers(workers, self.sync)

    # -- claims --------------------------------------------------------------------
    def claim(self, key: K, pod: PodKey) -> None:
        self.users[key].add(pod)
        self.on_claim()
        if self.lookup is not None or key in self.watches:
            return
        src = self.spec.source(key)
        informer = Informer(
            self.local,
            path(src.resource, namespace=src.namespace, group_version=src.group_version),
            field_selector=f"metadata.name={src.name}",
            handler=lambda old, new: self.queue.add(key),
            name=f"local {src.resource} {src.namespace}/{src.name}",
            metric_name=f"local {src.resource}",
        )
        self.watches.add(key, informer)

    def unclaim(self, key: K, pod: PodKey) -> None:
        users = self.users.get(key)
        if users is None:
            return
        users.discard(pod)
        if not users:
            del self.users[key]
            self.queue.add(key)  # unwatch, and delete the copy if the spec says so

    def claim_exactly(self, key: K, pods: set[PodKey]) -> bool:
        """Make ``pods`` the users of ``key``: claim the new, unclaim the rest, and look
        at the object again (for the reflectors whose object selects pods by labels:
        the pods it selects change as pods and the object do). Whether any pod uses it."""
        claimed = set(self.users.get(key, ()))
        for pod in claimed - pods:
            self.unclaim(key, pod)
        for pod in pods - claimed:
            self.claim(key, pod)
        self.queue.add(key)
        return bool(pods)

    async def read(self, key: K) -> Obj | None:
        """The claimed local object (None: it does not exist), once its watch answered."""
        informer = self.watches.get(key)
        if informer is None:
            raise SourceUnavailable(f"{key} is not claimed")
        with trio.move_on_after(SYNC_TIMEOUT):
            await informer.synced.wait()
        if not informer.synced.is_set():
            raise SourceUnavailable(f"no answer from the watch of {key} yet")
        src = self.spec.source(key)
        return informer.get(src.namespace, src.name)

    # -- reconcile one object ---------------------------------------------------------
    async def sync(self, key: K) -> float | None:
        async with self.locks.hold(key):
            await self._sync_locked(key)
        return None

    async def _sync_locked(self, key: K) -> None:
        src = self.spec.source(key)
        rns = remote_namespace(self.node_name, src.namespace)
        copy_path = path(
            src.resource, namespace=rns, name=src.copy_name, group_version=src.group_version
        )
        current = self.current(key, rns)
        if key not in self.users:
            self.watches.remove(key)
            if self.spec.delete_unused and current is not None and self.gc_allowed.is_set():
                try:
                    await self.remote.delete(copy_path)
                    log.info("deleted unused copy %s/%s", rns, src.copy_name)
                except NotFound:
                    pass
            return
        source = self._source(key, src)
        if source is None:
            # Deleted or not there yet: a running pod keeps what it has, like on a kubelet.
            return
        desired = self.spec.desired(key, source, rns)
        if current is None:
            current = await self._create_or_adopt(key, src, rns, desired)
            if current is None:
                return
        if self.spec.needs_replace(desired, current):
            await self.remote.delete(copy_path)
            await self.remote.create(_collection(src, rns), desired)
            log.info("replaced copy %s/%s", rns, src.copy_name)
        elif self.spec.needs_update(desired, current):
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.remote.replace(copy_path, desired)
            log.info("updated copy %s/%s", rns, src.copy_name)

    def _source(self, key: K, src: Source) -> Obj | None:
        if self.lookup is not None:
            return self.lookup(key)
        w = self.watches.get(key)
        return w.get(src.namespace, src.name) if w else None

    async def _create_or_adopt(self, key: K, src: Source, rns: str, desired: Obj) -> Obj | None:
        """Create the copy, or return the object already there if it is AK's to manage."""
        try:
            await self.remote.create(_collection(src, rns), desired)
            log.info("replicated %s %s/%s to %s", src.resource, src.namespace, src.name, rns)
            return None
        except Conflict as e:
            if not e.already_exists:
                raise
        existing = await self.remote.get(
            path(src.resource, namespace=rns, name=src.copy_name, group_version=src.group_version)
        )
        if not self.spec.is_own(existing, key):
            raise self.spec.conflict(key, rns)
        log.info("adopting existing copy %s/%s", rns, src.copy_name)
        return existing


def _collection(src: Source, rns: str) -> str:
    return path(src.resource, namespace=rns, group_version=src.group_version)
