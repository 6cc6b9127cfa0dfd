"""Sleep until the earliest refresh is due; wake early when an earlier one arrives.

Event-driven: one task sleeps exactly until the next due time of a
``RefreshSchedule``, and ``set`` wakes it when a new entry comes first. The
sleep is cut at ``MAX_SLEEP`` only so that a wall-clock jump (suspend, NTP
step) cannot delay a refresh by hours: trio sleeps on a monotonic clock, due
times are on the wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import trio

from ak.core.token_refresh import RefreshSchedule

K = TypeVar("K", bound=Hashable)

MAX_SLEEP = 300.0


class RefreshTimer(Generic[K]):
    """Calls ``on_due(key)`` (synchronous, cheap: it queues work) when a key is due."""

    def __init__(
        self, on_due: Callable[[K], None], *, wall: Callable[[], float] = time.time
    ) -> None:
        self.on_due = on_due
        self.wall = wall
        self.schedule: RefreshSchedule[K] = RefreshSchedule()
        self._changed = trio.Event()
        self.wakeups = 0

    def set(self, key: K, due: float) -> None:
        """Call ``on_due(key)`` at wall time ``due`` (replacing an earlier plan)."""
        if self.schedule.set(key, due):
            self._changed.set()

    def cancel(self, key: K) -> None:
        self.schedule.discard(key)

    def due(self, key: K) -> float | None:
        return self.schedule.due(key)

    async def run(self) -> None:
        while True:
            # A fresh Event before looking at the schedule: a ``set`` from now on
            # wakes the wait below (there is no checkpoint in between).
            self._changed = trio.Event()
            now = self.wall()
            for key in self.schedule.pop_due(now):
                self.on_due(key)
            next_due = self.schedule.next_due()
            delay = math.inf if next_due is None else min(MAX_SLEEP, max(0.0, next_due - now))
            with trio.move_on_after(delay):
                await self._changed.wait()
            self.wakeups += 1
