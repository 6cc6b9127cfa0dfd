"""Informers started and stopped one at a time, as what AK must watch changes.

A kubelet identity may watch only single objects by name (the Secrets and
ConfigMaps its pods use), and the event mirror follows the remote namespaces
AK owns; both need watches that come and go. ``run`` hosts them; when the
owning task is restarted by the supervisor, every known watch starts again
from where its informer was.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

import trio

from ak.kube.informer import Informer

K = TypeVar("K", bound=Hashable)


class WatchSet(Generic[K]):
    def __init__(self) -> None:
        self._informers: dict[K, Informer] = {}
        self._scopes: dict[K, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Host the watches until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._scopes.clear()
                for key in list(self._informers):
                    self._start(key)
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def add(self, key: K, informer: Informer) -> Informer:
        """Watch ``key`` with ``informer`` unless it is watched already; returns the one in use."""
        if key in self._informers:
            return self._informers[key]
        self._informers[key] = informer
        self._start(key)
        return informer

    def remove(self, key: K) -> None:
        self._informers.pop(key, None)
        scope = self._scopes.pop(key, None)
        if scope is not None:
            scope.cancel()

    def get(self, key: K) -> Informer | None:
        return self._informers.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._informers

    def __len__(self) -> int:
        return len(self._informers)

    def _start(self, key: K) -> None:
        if self._nursery is None or key in self._scopes:
            return
        scope = trio.CancelScope()
        self._scopes[key] = scope
        informer = self._informers[key]

        async def watch() -> None:
            with scope:
                await informer.run()

        self._nursery.start_soon(watch)
