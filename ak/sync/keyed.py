"""One lock per key, for work on one object reached by more than one path.

A Secret copy, say, is written by the dependency controller's own queue and by
every pod worker that needs it before its pod is created. The work queue keeps
one key out of two of *its* workers at once, but not out of a pod worker: two
pods that share a Secret would both create the copy, and the loser's 409 would
arrive before any cache shows the winner's copy. Everything that writes the
object takes its key's lock here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

import trio

K = TypeVar("K", bound=Hashable)


class KeyedLock(Generic[K]):
    def __init__(self) -> None:
        # Only keys someone holds or waits for have an entry: no growth with
        # the number of keys ever seen.
        self._locks: dict[K, tuple[trio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = trio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
