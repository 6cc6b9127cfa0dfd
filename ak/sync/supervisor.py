"""Run long-lived tasks in one nursery; restart a failing one with backoff.

A crash in one task (a bug, an API outage that escaped its own retries) is
logged and that task alone restarts; the process and the other tasks go on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from ak.backoff import Backoff

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.restarts: dict[str, int] = {}

    def start(
        self, name: str, fn: Callable[[], Awaitable[None]], *, healthy_after: float = 60
    ) -> None:
        self.restarts[name] = 0
        self.nursery.start_soon(self._supervise, name, fn, healthy_after, name=name)

    async def _supervise(
        self, name: str, fn: Callable[[], Awaitable[None]], healthy_after: float
    ) -> None:
        backoff = Backoff(initial=1, maximum=60)
        while True:
            started = trio.current_time()
            try:
                await fn()
                log.warning("task %s returned; restarting", name)
            except Exception:
                log.exception("task %s failed", name)
            if trio.current_time() - started > healthy_after:
                backoff.reset()
            delay = backoff.next()
            self.restarts[name] += 1
            log.info("restarting task %s in %.1fs (restart %d)", name, delay, self.restarts[name])
            await trio.sleep(delay)
