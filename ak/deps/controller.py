"""Replicate the Secrets and ConfigMaps pods use into their remote namespaces.

What pods use, and how a pod waits for it; the copying itself is the shared
``Replicator`` (``ak/deps/replicator.py``). Remote copies are found by AK's
labels; a copy no pod uses is deleted, once every live pod has been tracked
after a start (before that, "unused" may only mean "not yet claimed").
"""

from __future__ import annotations

import functools
import logging

import trio

from ak.core import ownership
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
from ak.core.labels import LABEL_NODE, LABEL_REPLICA, REPLICA_VALUE
from ak.core.types import Obj, PodKey
from ak.deps.replicator import Replicator, Source, SourceUnavailable
from ak.kube.client import KubeClient
from ak.kube.registry import Informers
from ak.metrics import REPLICATED

log = logging.getLogger(__name__)

RefKey = tuple[str, Kind, str]  # (local namespace, kind, name)
_RESOURCE: dict[Kind, str] = {"Secret": "secrets", "ConfigMap": "configmaps"}


class DependencyCopies:
    """The ``CopySpec`` of Secret and ConfigMap copies."""

    delete_unused = True

    def __init__(self, node_name: str, node_label: str) -> None:
        self.node_name = node_name
        self.node_label = node_label

    def source(self, key: RefKey) -> Source:
        ns, kind, name = key
        return Source(ns, _RESOURCE[kind], name, name)

    def desired(self, key: RefKey, source: Obj, remote_namespace: str) -> Obj:
        return to_remote_copy(
            source,
            node_name=self.node_name,
            local_namespace=key[0],
            remote_namespace=remote_namespace,
            kind=key[1],
        )

    def is_own(self, existing: Obj, key: RefKey) -> bool:
        # AK's copies, and the original AK's (a user migrating keeps them).
        return is_own_copy(existing, self.node_label, key[0])

    def needs_update(self, desired: Obj, current: Obj) -> bool:
        return copy_needs_update(desired, current)

    def needs_replace(self, desired: Obj, current: Obj) -> bool:
        return copy_needs_replace(desired, current)

    def conflict(self, key: RefKey, remote_namespace: str) -> TranslationError:
        return TranslationError(
            "DependencyConflict",
            f"a {key[1]} named {key[2]!r} already exists in remote namespace "
            f"{remote_namespace} and was not made by AK",
        )


class DependencyController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        node_name: str,
        node_label: str,
        *,
        informers: Informers,
    ) -> None:
        self.node_name = node_name
        # One watch per collection under the node label, shared with the
        # identity Secrets and root CA replicas (ak/kube/shared.py).
        self.copies = {
            kind: informers.shared(
                remote, f"/api/v1/{res}", f"{LABEL_NODE}={node_label}", f"remote {res}"
            ).view(
                {LABEL_NODE: node_label, LABEL_REPLICA: REPLICA_VALUE},
                functools.partial(self._on_copy, kind),
                wanted=lambda: bool(self.replicator.users),
            )
            for kind, res in _RESOURCE.items()
        }
        for kind, informer in self.copies.items():
            REPLICATED.labels(kind).set_function(informer.size)
        self.replicator: Replicator[RefKey] = Replicator(
            local,
            remote,
            node_name,
            DependencyCopies(node_name, node_label),
            lambda rk, rns: self.copies[rk[1]].get(rns, rk[2]),
            name="dependencies",
            on_claim=self._claimed,
        )
        # pod -> (uid and ephemeral container names, refs)
        self.pod_refs: dict[PodKey, tuple[str, set[RefKey]]] = {}
        self.optional: dict[RefKey, bool] = {}
        self.synced = trio.Event()

    def _claimed(self) -> None:
        for view in self.copies.values():
            view.poke()

    @property
    def users(self) -> dict[RefKey, set[PodKey]]:
        return self.replicator.users

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for informer in self.copies.values():
                nursery.start_soon(informer.run)
            for informer in self.copies.values():
                await informer.synced.wait()
            self.synced.set()
            nursery.start_soon(self._collect_garbage_when_allowed)
            await self.replicator.run(8)

    # -- bookkeeping called by the pod path ------------------------------------------
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
            self.optional[rk] = self.optional.get(rk, True) and ref.optional
            self.replicator.claim(rk, key)
        self.pod_refs[key] = (signature, ref_keys)
        return refs

    def release(self, key: PodKey) -> None:
        """The pod no longer runs remotely: drop its claims; unused copies go."""
        known = self.pod_refs.pop(key, None)
        if not known:
            return
        for rk in known[1]:
            self.replicator.unclaim(rk, key)
            if rk not in self.replicator.users:
                self.optional.pop(rk, None)

    # -- the pod preparer (ak/pods/prepare.py) -------------------------------------
    async def prepare(self, local: Obj, desired: Obj, notices: list[Notice]) -> Obj:
        notices.extend(await self.ensure(local))
        return desired

    async def created(self, local: Obj, remote: Obj) -> None:
        pass  # copies are shared by the namespace's pods: none is owned by one

    def tracked_all(self) -> None:
        self.replicator.gc_allowed.set()

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
            try:
                source = await self.replicator.read(rk)
            except SourceUnavailable as e:
                raise TranslationError(
                    "DependencyUnavailable", f"cannot read {rk[1]} {ns}/{rk[2]} yet", settling=True
                ) from e
            if source is None:
                if not self.optional.get(rk, False):
                    missing.append(rk)
                else:
                    notices.append(
                        Notice(
                            optional_missing_reason(rk[1]), f"{rk[1].lower()} {rk[2]!r} not found"
                        )
                    )
                continue
            await self.replicator.sync(rk)
        if missing:
            names = ", ".join(f"{kind} {name!r}" for _, kind, name in missing)
            raise TranslationError(
                missing_reason([kind for _, kind, _ in missing]),
                f"{names} not found in namespace {ns}; the pod starts once it exists",
            )
        return notices

    # -- remote copies ----------------------------------------------------------------
    def _on_copy(self, kind: Kind, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = ownership.local_key(obj, self.node_name)
        if key is not None:
            # Garbage, drift from the source, or a deleted copy still needed: sync decides.
            self.replicator.queue.add((key[0], kind, key[1]))

    async def _collect_garbage_when_allowed(self) -> None:
        await self.replicator.gc_allowed.wait()
        for kind, informer in self.copies.items():
            for obj in list(informer.values()):
                key = ownership.local_key(obj, self.node_name)
                if key is None:
                    continue  # not this node's (its label and place disagree)
                rk = (key[0], kind, key[1])
                if rk not in self.replicator.users:
                    self.replicator.queue.add(rk)
