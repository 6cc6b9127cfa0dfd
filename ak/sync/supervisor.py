"""Run long-lived tasks in one nursery; restart a failing one with backoff.

A crash in one task (a bug, an API outage that escaped its own retries) is
logged and that task alone restarts; the process and the other tasks go on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from ak.backoff import Backoff
from ak.metrics import TASK_RESTARTS

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, nursery: trio.Nursery, *, max_failures: int = 8) -> None:
        self.nursery = nursery
        self.restarts: dict[str, int] = {}
        # For ``healthy``: quick failures in a row, and since when each task runs (None
        # while it waits to restart).
        self.max_failures = max_failures
        self.failures: dict[str, int] = {}
        self._running: dict[str, tuple[float, float] | None] = {}

    def start(
        self, name: str, fn: Callable[[], Awaitable[None]], *, healthy_after: float = 60
    ) -> None:
        self.restarts[name] = 0
        self.failures[name] = 0
        self._running[name] = None
        self.nursery.start_soon(self._supervise, name, fn, healthy_after, name=name)

    async def _supervise(
        self, name: str, fn: Callable[[], Awaitable[None]], healthy_after: float
    ) -> None:
        backoff = Backoff(initial=1, maximum=60)
        while True:
            started = trio.current_time()
            self._running[name] = (started, healthy_after)
            try:
                await fn()
                log.warning("task %s returned; restarting", name)
            except Exception:
                log.exception("task %s failed", name)
            self._running[name] = None
            if trio.current_time() - started > healthy_after:
                backoff.reset()
                self.failures[name] = 0
            self.failures[name] += 1
            delay = backoff.next()
            self.restarts[name] += 1
            TASK_RESTARTS.labels(name).inc()
            log.info("restarting task %s in %.1fs (restart %d)", name, delay, self.restarts[name])
            await trio.sleep(delay)

    def stuck(self) -> list[str]:
        """Tasks in a restart loop: ``max_failures`` failures in a row, each within its
        ``healthy_after`` of starting (with the backoff, minutes of failing), and not now
        running for longer than that."""
        now = trio.current_time()
        out = []
        for name, failures in self.failures.items():
            running = self._running[name]
            recovered = running is not None and now - running[0] > running[1]
            if failures >= self.max_failures and not recovered:
                out.append(name)
        return out

    def healthy(self) -> bool:
        """No task is stuck in a restart loop: what AK's systemd watchdog pings depend on."""
        return not self.stuck()
