"""``capacity = "auto"``: the node's capacity follows what the remote cluster has free."""

from __future__ import annotations

import logging

import trio

from ak.core.capacity import auto_capacity
from ak.core.types import Obj
from ak.kube.client import KubeClient
from ak.kube.informer import Informer

log = logging.getLogger(__name__)


class RemoteCapacity:
    """Watches remote nodes and the non-terminal remote pods; computes on demand,
    only when something changed since the last computation."""

    def __init__(
        self, remote: KubeClient, node_label: str, fraction: float, selector: str | None
    ) -> None:
        self.node_label = node_label
        self.fraction = fraction
        self.nodes = Informer(
            remote,
            "/api/v1/nodes",
            label_selector=selector,
            handler=self._dirty,
            name="remote nodes",
        )
        self.pods = Informer(
            remote,
            "/api/v1/pods",
            field_selector="status.phase!=Succeeded,status.phase!=Failed",
            handler=self._dirty,
            name="remote pods (capacity)",
        )
        self._changed = True
        self._value: dict[str, str] | None = None

    def _dirty(self, old: Obj | None, new: Obj | None) -> None:
        self._changed = True

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.nodes.run)
            nursery.start_soon(self.pods.run)

    def current(self) -> dict[str, str] | None:
        """Capacity now, or None until both caches are synced."""
        if not (self.nodes.synced.is_set() and self.pods.synced.is_set()):
            return None
        if self._changed:
            self._value = auto_capacity(
                list(self.nodes.values()),
                list(self.pods.values()),
                self.node_label,
                self.fraction,
            )
            self._changed = False
        return self._value
