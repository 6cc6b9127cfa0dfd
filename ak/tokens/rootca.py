"""The LOCAL cluster's CA bundle in every remote namespace whose pods read it.

Source: the local ``kube-root-ca.crt`` ConfigMap of the pod's namespace,
exactly what a local kubelet would mount. AK (a node under the Node
authorizer) may read it because the pods bound to it reference it; it is
watched by name, one watch per local namespace in use, so a CA rotation
reaches the remote copies within a watch event. The copying is the shared
``Replicator`` (``ak/deps/replicator.py``).

The replica (``ROOT_CA_REPLICA``) is shared by the pods of a namespace and
never deleted on its own: it goes with the remote namespace, which is deleted
once no pod uses it. A namespace no longer in use only loses its watch.
"""

from __future__ import annotations

import logging

import trio

from ak.core import ownership
from ak.core.errors import TranslationError
from ak.core.labels import LABEL_LOCAL_ROOT_CA, LABEL_NODE, LOCAL_ROOT_CA_VALUE
from ak.core.root_ca import (
    KUBE_ROOT_CA,
    ROOT_CA_REPLICA,
    is_root_ca_replica,
    root_ca_needs_update,
    root_ca_replica,
)
from ak.core.types import Obj, PodKey
from ak.deps.replicator import Replicator, Source, SourceUnavailable
from ak.kube.client import KubeClient
from ak.kube.registry import Informers

log = logging.getLogger(__name__)


REASON_ROOT_CA = "LocalRootCAUnavailable"
SYNC_TIMEOUT = 15.0


class RootCACopy:
    """The ``CopySpec`` of the local CA bundle, keyed by local namespace."""

    delete_unused = False

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name

    def source(self, key: str) -> Source:
        return Source(key, "configmaps", KUBE_ROOT_CA, ROOT_CA_REPLICA)

    def desired(self, key: str, source: Obj, remote_namespace: str) -> Obj:
        return root_ca_replica(
            source, node_name=self.node_name, local_namespace=key, remote_namespace=remote_namespace
        )

    def is_own(self, existing: Obj, key: str) -> bool:
        return is_root_ca_replica(existing)

    def needs_update(self, desired: Obj, current: Obj) -> bool:
        return root_ca_needs_update(desired, current)

    def needs_replace(self, desired: Obj, current: Obj) -> bool:
        return False  # a plain, mutable ConfigMap

    def conflict(self, key: str, remote_namespace: str) -> TranslationError:
        return TranslationError(
            REASON_ROOT_CA,
            f"a ConfigMap named {ROOT_CA_REPLICA!r} already exists in remote namespace "
            f"{remote_namespace} and was not made by AK",
        )


class RootCAReplicator:
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
        self.replicas = informers.shared(
            remote, "/api/v1/configmaps", f"{LABEL_NODE}={node_label}", "remote configmaps"
        ).view(
            {LABEL_NODE: node_label, LABEL_LOCAL_ROOT_CA: LOCAL_ROOT_CA_VALUE},
            self._on_replica,
            wanted=lambda: bool(self.replicator.users),
        )
        self.replicator: Replicator[str] = Replicator(
            local,
            remote,
            node_name,
            RootCACopy(node_name),
            lambda ns, rns: self.replicas.get(rns, ROOT_CA_REPLICA),
            name="root-ca",
            on_claim=self.replicas.poke,
        )
        self.synced = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.replicas.run)
            await self.replicas.synced.wait()
            self.synced.set()
            await self.replicator.run(2)

    # -- claims by pods ------------------------------------------------------------
    def claim(self, namespace: str, key: PodKey) -> None:
        """A pod in ``namespace`` reads the CA: keep its replica current."""
        self.replicator.claim(namespace, key)

    def release(self, key: PodKey) -> None:
        self.replicator.unclaim(key[0], key)

    async def ensure(self, namespace: str, key: PodKey) -> None:
        """Claim, and make sure the replica exists and is current before a pod uses it.

        Raises TranslationError while the local CA cannot be read.
        """
        with trio.move_on_after(SYNC_TIMEOUT):
            await self.synced.wait()
        self.claim(namespace, key)
        try:
            source = await self.replicator.read(namespace)
        except SourceUnavailable as e:
            raise TranslationError(
                REASON_ROOT_CA,
                f"cannot read ConfigMap {namespace}/{KUBE_ROOT_CA} yet",
                settling=True,
            ) from e
        if source is None:
            raise TranslationError(
                REASON_ROOT_CA,
                f"ConfigMap {KUBE_ROOT_CA} not found in namespace {namespace}; "
                "the pod starts once the local cluster publishes it",
                settling=True,  # published a moment after the namespace is made
            )
        await self.replicator.sync(namespace)

    def _on_replica(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        local_ns = ownership.local_namespace(obj, self.node_name)
        if local_ns is not None and local_ns in self.replicator.users:
            self.replicator.queue.add(local_ns)  # drift or deletion: put it back
