"""What the generic pod controller asks of the place where pods really run.

In the spirit of virtual-kubelet's ``PodLifecycleHandler``: the controller
(``ak/pods/controller.py``) owns the local side, i.e. the watch of pods bound
to the node, the work queue, the order of things, deletion semantics, error
memory, Events and status writes. A provider owns the other side: its own
view of the pods it runs, how a local pod becomes one of them, its writes,
and the status it reports. ``ak/pods/remote.py`` is the provider for a
remote Kubernetes cluster; ``tests/unit/test_pod_controller.py`` drives the
controller with one that keeps pods in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import trio

from ak.core.errors import Notice
from ak.core.types import Obj, PodKey

Notify = Callable[[PodKey, Obj | None], None]
"""Called by the provider when its twin of a local pod changed (None: gone)."""


@dataclass
class Outcome:
    """What a provider call has to say besides success."""

    notices: list[Notice] = field(default_factory=list)
    again: float | None = None
    """Seconds after which the controller should sync the pod again."""


class LocalPods(Protocol):
    """What a provider may read of the local side: the controller's view."""

    synced: trio.Event
    """Set once the local view (and the provider's own) is complete."""

    def live(self) -> Iterator[Obj]:
        """The pods bound to the node that should run: neither deleting nor finished."""
        ...

    def in_use(self, local_ns: str) -> bool:
        """Whether the local namespace still has pods on the node."""
        ...


class PodProvider(Protocol):
    """Seven members, as virtual-kubelet's ``PodLifecycleHandler`` plus its
    ``PodNotifier``: how a pod runs, and how the controller hears of it."""

    synced: trio.Event
    """Set once the provider's view of its pods is complete (after a restart too)."""

    async def run(self, notify: Notify, local: LocalPods) -> None:
        """Watch the provider's pods, calling ``notify`` for each change (its
        initial list included); run its own housekeeping. Once ``local.synced``,
        whatever no ``local.live()`` pod claims may be cleaned up."""
        ...

    def get(self, key: PodKey) -> Obj | None:
        """The twin of local pod ``key``, from the provider's view."""
        ...

    async def create(self, local: Obj) -> Outcome:
        """Run ``local``. Raise TranslationError when it cannot (yet): the
        controller reports it on the pod and retries with backoff."""
        ...

    async def update(self, local: Obj, remote: Obj) -> Outcome:
        """Bring the running twin in line with ``local`` (what may change on a
        pod; a twin the original AK made becomes this AK's, ``core/incarnation``)."""
        ...

    async def delete(self, key: PodKey, remote: Obj, grace: int | None) -> None:
        """Stop the twin, with ``grace`` seconds for its containers (None: theirs)."""
        ...

    def status(self, local: Obj, remote: Obj) -> Obj:
        """The local pod's status, from its twin's."""
        ...

    def release(self, key: PodKey) -> None:
        """``key`` no longer runs: drop what the provider holds for it."""
        ...
