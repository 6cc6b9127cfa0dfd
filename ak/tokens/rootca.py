"""The LOCAL cluster's CA bundle in every remote namespace whose pods read it.

Source: the local ``kube-root-ca.crt`` ConfigMap of the pod's namespace,
exactly what a local kubelet would mount. AK (a node under the Node
authorizer) may read it because the pods bound to it reference it; it is
watched by name, one watch per local namespace in use, so a CA rotation
reaches the remote copies within a watch event.

The replica (``ROOT_CA_REPLICA``) is shared by the pods of a namespace and
never deleted on its own: it goes with the remote namespace, which the pod
controller deletes once no pod uses it. A namespace no longer in use only
loses its watch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import trio

from ak.core.errors import TranslationError
from ak.core.labels import LABEL_LOCAL_ROOT_CA, LABEL_NAMESPACE, LABEL_NODE, LOCAL_ROOT_CA_VALUE
from ak.core.names import remote_namespace
from ak.core.root_ca import (
    KUBE_ROOT_CA,
    ROOT_CA_REPLICA,
    is_root_ca_replica,
    root_ca_needs_update,
    root_ca_replica,
)
from ak.kube.client import KubeClient, path
from ak.kube.informer import Informer
from ak.kube.watchset import WatchSet
from ak.sync.keyed import KeyedLock
from ak.sync.queue import WorkQueue
from ak.tokens.owned import put_owned

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PodKey = tuple[str, str]

REASON_ROOT_CA = "LocalRootCAUnavailable"
SYNC_TIMEOUT = 15.0


class RootCAReplicator:
    def __init__(
        self, local: KubeClient, remote: KubeClient, node_name: str, node_label: str
    ) -> None:
        self.local = local
        self.remote = remote
        self.node_name = node_name
        self.replicas = Informer(
            remote,
            "/api/v1/configmaps",
            label_selector=f"{LABEL_NODE}={node_label},{LABEL_LOCAL_ROOT_CA}={LOCAL_ROOT_CA_VALUE}",
            handler=self._on_replica,
            name="remote root CA replicas",
        )
        self.users: dict[str, set[PodKey]] = defaultdict(set)
        self.watches: WatchSet[str] = WatchSet()
        self.queue: WorkQueue[str] = WorkQueue("root-ca")
        self.synced = trio.Event()
        # The pod path (ensure) and this queue write the same replica.
        self._locks: KeyedLock[str] = KeyedLock()

    async def run(self) -> None:
        # After a restart of this task, look at every namespace in use again.
        for ns in self.users:
            self.queue.add(ns)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watches.run)
            nursery.start_soon(self.replicas.run)
            await self.replicas.synced.wait()
            self.synced.set()
            await self.queue.run_workers(2, self._sync)

    # -- claims by pods ------------------------------------------------------------
    def claim(self, namespace: str, key: PodKey) -> None:
        """A pod in ``namespace`` reads the CA: keep its replica current."""
        self.users[namespace].add(key)
        self._watch(namespace)

    def release(self, key: PodKey) -> None:
        users = self.users.get(key[0])
        if users is None:
            return
        users.discard(key)
        if not users:
            del self.users[key[0]]
            self._unwatch(key[0])

    async def ensure(self, namespace: str, key: PodKey) -> None:
        """Claim, and make sure the replica exists and is current before a pod uses it.

        Raises TranslationError while the local CA cannot be read.
        """
        with trio.move_on_after(SYNC_TIMEOUT):
            await self.synced.wait()
        self.claim(namespace, key)
        w = self.watches.get(namespace)
        if w is not None:
            with trio.move_on_after(SYNC_TIMEOUT):
                await w.synced.wait()
        if w is None or not w.synced.is_set():
            raise TranslationError(
                REASON_ROOT_CA,
                f"cannot read ConfigMap {namespace}/{KUBE_ROOT_CA} yet",
                settling=True,
            )
        if w.get(namespace, KUBE_ROOT_CA) is None:
            raise TranslationError(
                REASON_ROOT_CA,
                f"ConfigMap {KUBE_ROOT_CA} not found in namespace {namespace}; "
                "the pod starts once the local cluster publishes it",
                settling=True,  # published a moment after the namespace is made
            )
        await self._sync(namespace)

    # -- watches -------------------------------------------------------------------
    def _watch(self, namespace: str) -> None:
        if namespace in self.watches:
            return
        informer = Informer(
            self.local,
            path("configmaps", namespace=namespace),
            field_selector=f"metadata.name={KUBE_ROOT_CA}",
            handler=lambda old, new: self.queue.add(namespace),
            name=f"local {KUBE_ROOT_CA} {namespace}",
            metric_name=f"local {KUBE_ROOT_CA}",
        )
        self.watches.add(namespace, informer)

    def _unwatch(self, namespace: str) -> None:
        self.watches.remove(namespace)

    def _on_replica(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        local_ns = (obj["metadata"].get("labels") or {}).get(LABEL_NAMESPACE, "")
        if local_ns in self.users:
            self.queue.add(local_ns)  # drift or deletion: put it back

    # -- reconcile one namespace -----------------------------------------------------
    async def _sync(self, namespace: str) -> None:
        async with self._locks.hold(namespace):
            w = self.watches.get(namespace)
            source = w.get(namespace, KUBE_ROOT_CA) if w else None
            if source is None:
                # Not in use, or gone locally: running pods keep what they have.
                return
            rns = remote_namespace(self.node_name, namespace)
            desired = root_ca_replica(
                source, node_name=self.node_name, local_namespace=namespace, remote_namespace=rns
            )
            current = self.replicas.get(rns, ROOT_CA_REPLICA)
            if current is not None and not root_ca_needs_update(desired, current):
                return
            await put_owned(
                self.remote,
                "configmaps",
                desired,
                current,
                owned=is_root_ca_replica,
                reason=REASON_ROOT_CA,
            )
            log.info("local CA of %s replicated to %s/%s", namespace, rns, ROOT_CA_REPLICA)
