"""A keyed, coalescing work queue with per-key retry backoff.

Like client-go's workqueue: a key is queued at most once however many events
arrive for it (a burst of updates to one pod is one sync), never processed by
two workers at once, and re-queued after a failure with growing delay.

Urgent keys go before the others: in a burst of thousands of new pods, a pod
that already runs remotely gets its status (or deletion) through in seconds
instead of waiting behind every creation queued before it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import trio

from ak.backoff import Backoff
from ak.core.errors import TranslationError
from ak.kube.errors import KubeError
from ak.metrics import QUEUE_DEPTH, SYNCS

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

EXPECTED: tuple[type[Exception], ...] = (KubeError, TranslationError, trio.TooSlowError)
"""What a sync may meet in normal operation: API errors and outages, pods AK
cannot run yet, timeouts. Anything else is a bug in AK: it is retried all the
same (the next try may well pass), but logged with its traceback and counted
as ``result="bug"``, so it is never mistaken for a passing API error."""


class RetrySoon(Exception):
    """An expected race, not a failure: try the key again after ``delay`` seconds,
    quietly (e.g. a write conditional on a cached version the watch has not yet
    brought up to date)."""

    def __init__(self, delay: float, why: str) -> None:
        super().__init__(why)
        self.delay = delay


class WorkQueue(Generic[K]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._order: dict[K, None] = {}  # insertion-ordered set
        self._urgent: dict[K, None] = {}  # served first; disjoint from _order
        self._processing: set[K] = set()
        self._dirty: dict[K, bool] = {}  # re-added while processing: key -> urgent
        self._backoff: dict[K, Backoff] = {}
        self._wakeup = trio.Condition()
        QUEUE_DEPTH.labels(name).set_function(self.__len__)

    def __len__(self) -> int:
        return len(self._order) + len(self._urgent)

    def add(self, key: K, *, urgent: bool = False) -> None:
        """Queue ``key``; safe from synchronous handlers (no await)."""
        if key in self._processing:
            self._dirty[key] = self._dirty.get(key, False) or urgent
            return
        if key in self._urgent:
            return
        if urgent:
            self._order.pop(key, None)
            self._urgent[key] = None
            self._notify()
        elif key not in self._order:
            self._order[key] = None
            self._notify()

    def _notify(self) -> None:
        # Condition.notify needs the lock; take it without blocking when free.
        try:
            self._wakeup.acquire_nowait()
        except trio.WouldBlock:
            return
        try:
            self._wakeup.notify()
        finally:
            self._wakeup.release()

    def add_after(self, key: K, delay: float, nursery: trio.Nursery) -> None:
        async def later() -> None:
            await trio.sleep(delay)
            self.add(key)

        nursery.start_soon(later)

    async def _get(self) -> K:
        async with self._wakeup:
            while not self._order and not self._urgent:
                await self._wakeup.wait()
            queue = self._urgent or self._order
            key = next(iter(queue))
            del queue[key]
            self._processing.add(key)
            if self._order or self._urgent:
                self._wakeup.notify()
            return key

    def _done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self.add(key, urgent=self._dirty.pop(key))

    async def run_workers(self, count: int, sync: Callable[[K], Awaitable[float | None]]) -> None:
        """Run ``count`` workers forever. ``sync`` returns None when done with the key,
        or a delay after which it wants the key again (e.g. to re-check later)."""
        # Keys that were mid-sync when an earlier run of the workers died (the
        # supervisor restarts the task) would otherwise be stuck "processing".
        for key in self._processing | self._dirty.keys():
            if key not in self._urgent:
                self._order.setdefault(key, None)
        self._processing.clear()
        self._dirty.clear()
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(self._worker, sync, nursery)

    async def _worker(
        self, sync: Callable[[K], Awaitable[float | None]], nursery: trio.Nursery
    ) -> None:
        while True:
            key = await self._get()
            try:
                again = await sync(key)
            except RetrySoon as e:
                SYNCS.labels(self.name, "retry").inc()
                log.debug("%s: %s: %s; again in %.2fs", self.name, key, e, e.delay)
                self._done(key)
                self.add_after(key, e.delay, nursery)
                continue
            except Exception as e:
                delay = self._backoff.setdefault(key, Backoff(initial=0.5, maximum=60)).next()
                if isinstance(e, EXPECTED):
                    SYNCS.labels(self.name, "error").inc()
                    log.warning(
                        "%s: sync of %s failed (%s); retrying in %.1fs", self.name, key, e, delay
                    )
                else:
                    SYNCS.labels(self.name, "bug").inc()
                    log.exception(
                        "%s: sync of %s failed with an unexpected error, a bug in AK; "
                        "retrying in %.1fs",
                        self.name,
                        key,
                        delay,
                    )
                self._done(key)
                self.add_after(key, delay, nursery)
                continue
            SYNCS.labels(self.name, "ok").inc()
            self._backoff.pop(key, None)
            self._done(key)
            if again is not None:
                self.add_after(key, again, nursery)
