"""The tenant's remote ResourceQuotas, watched so the node never advertises
more than they still allow (``ak.core.quota_capacity``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import trio

from ak.core.labels import LABEL_MANAGED_BY, LABEL_NODE, MANAGED_BY_VALUE
from ak.core.quota_capacity import quota_limits
from ak.core.types import Obj
from ak.kube.client import KubeClient
from ak.kube.informer import Informer
from ak.kube.registry import Informers


class RemoteQuotas:
    """This node's remote namespaces and the quotas AK wrote in them."""

    def __init__(
        self,
        remote: KubeClient,
        node_label: str,
        template_hard: Mapping[str, str],
        *,
        informers: Informers,
    ):
        self.template_hard = dict(template_hard)
        # The pod path's watch of the node's namespaces, shared (ak/kube/shared.py).
        self.namespaces = informers.shared(
            remote, "/api/v1/namespaces", f"{LABEL_NODE}={node_label}", "remote namespaces"
        ).view({LABEL_NODE: node_label}, self._dirty)
        # Under the node label too: every tenant's quotas carry managed-by, and a
        # watch of them all made each AK receive every other tenant's quota updates.
        self.quotas = Informer(
            remote,
            "/api/v1/resourcequotas",
            label_selector=f"{LABEL_NODE}={node_label},{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}",
            handler=self._dirty,
            name="remote resource quotas",
        )
        self._changed = True
        self._value: dict[str, Decimal] = {}

    def _dirty(self, old: Obj | None, new: Obj | None) -> None:
        self._changed = True

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.namespaces.run)
            nursery.start_soon(self.quotas.run)

    def limits(self) -> dict[str, Decimal]:
        """Per node resource, the most to advertise; nothing until both caches are synced."""
        if not (self.namespaces.synced.is_set() and self.quotas.synced.is_set()):
            return {}
        if self._changed:
            mine = {n["metadata"]["name"] for n in self.namespaces.values()}
            quotas = [q for q in self.quotas.values() if q["metadata"].get("namespace") in mine]
            self._value = quota_limits(quotas, self.template_hard)
            self._changed = False
        return self._value
