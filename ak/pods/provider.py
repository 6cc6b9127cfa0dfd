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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from ak.core.errors import Notice
from ak.core.types import Obj

PodKey = tuple[str, str]

Notify = Callable[[PodKey, Obj | None], None]
"""Called by the provider when its twin of a local pod changed (None: gone)."""


@dataclass
class Outcome:
    """What a provider call has to say besides success."""

    notices: list[Notice] = field(default_factory=list)
    again: float | None = None
    """Seconds after which the controller should sync the pod again."""


class PodProvider(Protocol):
    synced: trio.Event
    """Set once the provider's view of its pods is complete (after a restart too)."""

    async def run(self, notify: Notify, in_use: Callable[[str], bool]) -> None:
        """Watch the provider's pods, calling ``notify`` for each change; run its
        own housekeeping. ``in_use(local_ns)``: whether the local namespace still
        has pods on the node."""
        ...

    def has(self, key: PodKey) -> bool:
        """Whether ``key`` has a twin; cheap (called on every local event)."""
        ...

    def get(self, key: PodKey) -> Obj | None:
        """The twin of local pod ``key``, from the provider's view."""
        ...

    def tracked_all(self) -> None:
        """Every live pod has been ``track``ed after start-up: what nobody claims may go."""
        ...

    async def create(self, local: Obj) -> Outcome:
        """Run ``local``. Raise TranslationError when it cannot (yet): the
        controller reports it on the pod and retries with backoff."""
        ...

    async def update(self, local: Obj, remote: Obj) -> Outcome:
        """Bring the running twin in line with ``local`` (what may change on a pod)."""
        ...

    async def adopt(self, local: Obj, remote: Obj) -> None:
        """Make a twin made by the original AK this AK's own (``core/incarnation``)."""
        ...

    async def delete(self, key: PodKey, remote: Obj, grace: int | None) -> None:
        """Stop the twin, with ``grace`` seconds for its containers (None: theirs)."""
        ...

    def status(self, local: Obj, remote: Obj) -> Obj:
        """The local pod's status, from its twin's."""
        ...

    def track(self, local: Obj) -> None:
        """``local`` is live and has a twin (cheap; every sync)."""
        ...

    def release(self, key: PodKey) -> None:
        """``key`` no longer runs: drop what the provider holds for it."""
        ...
