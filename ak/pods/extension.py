"""What other features add to the pod path, without the pod controller knowing them.

An extension sees each pod before its remote twin is created (and may change
the remote pod, or create per-pod remote objects first), sees every live pod
on each sync (to resume its work after a restart), and hears when a pod is
gone for good. Service-account tokens are the first user.
"""

from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]
PodKey = tuple[str, str]


class PodExtension(Protocol):
    async def prepare(self, local: Obj, desired: Obj) -> Obj:
        """Return the remote pod to create; raise TranslationError to refuse."""
        ...

    def track(self, local: Obj) -> None:
        """A live local pod whose remote pod exists; cheap, called on every sync."""
        ...

    def release(self, key: PodKey) -> None:
        """The pod no longer runs remotely."""
        ...
