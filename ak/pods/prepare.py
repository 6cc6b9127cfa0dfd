"""Everything a pod needs on the remote side before it can run there.

One protocol for every helper of the pod path: the remote namespace
(``ak/pods/namespaces.py``), the Secret/ConfigMap copies (``ak/deps``) and
the pod's local identity, i.e. service-account tokens and the local CA
(``ak/tokens``). The remote-cluster provider calls them in that order before
it creates a remote pod (or adds an ephemeral container), tells them about
every live pod on each sync, and when a pod is gone for good.

Each serialises its own writes per object with ``ak.sync.keyed.KeyedLock``,
since its own work queue touches the same objects as the pod workers.
"""

from __future__ import annotations

from typing import Protocol

import trio

from ak.core.errors import Notice
from ak.core.types import Obj, PodKey


class PodPreparer(Protocol):
    @property
    def synced(self) -> trio.Event:
        """Set once its view of what exists remotely is complete."""
        ...

    async def prepare(self, local: Obj, desired: Obj, notices: list[Notice]) -> Obj:
        """Make what ``local`` needs exist remotely; return ``desired`` (the remote
        pod, or the part of it being added), changed if need be. Raise
        TranslationError to refuse or to wait; append to ``notices`` what the
        user should hear while the pod goes ahead."""
        ...

    async def created(self, local: Obj, remote: Obj) -> None:
        """The remote pod now exists (``remote``, as the API server returned it): write
        what it owns, so the remote garbage collector removes that with it.
        Failures are the preparer's own to retry (the pod is made); one the user
        must hear of is raised as TranslationError as well."""
        ...

    def track(self, local: Obj) -> object:
        """A live local pod whose remote pod exists; cheap, called on every sync
        (and for every live pod once the caches are synced, after a restart)."""
        ...

    def release(self, key: PodKey) -> None:
        """The pod no longer runs remotely."""
        ...

    def tracked_all(self) -> None:
        """After a restart, every live pod has been ``track``ed: what no pod
        claims may now be removed."""
        ...
