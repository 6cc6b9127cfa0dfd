"""WatchSet starts, stops and (after its task restarts) restarts per-object watches."""

from __future__ import annotations

from typing import Any, cast

import trio
import trio.testing

from ak.kube.informer import Informer
from ak.kube.watchset import WatchSet


class Recorder:
    """Stands in for an Informer: only ``run`` is used by WatchSet."""

    def __init__(self) -> None:
        self.starts = 0
        self.running = False

    async def run(self) -> None:
        self.starts += 1
        self.running = True
        try:
            await trio.sleep_forever()
        finally:
            self.running = False


def as_informer(r: Recorder) -> Informer:
    return cast(Informer, cast(Any, r))


async def test_added_before_run_starts_with_it_and_remove_stops() -> None:
    ws: WatchSet[str] = WatchSet()
    a, b = Recorder(), Recorder()
    ws.add("a", as_informer(a))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws.run)
        await trio.testing.wait_all_tasks_blocked()
        assert a.running
        ws.add("b", as_informer(b))
        assert ws.add("b", as_informer(Recorder())) is as_informer(b)  # already watched
        await trio.testing.wait_all_tasks_blocked()
        assert b.running
        ws.remove("a")
        await trio.testing.wait_all_tasks_blocked()
        assert not a.running and "a" not in ws and len(ws) == 1
        nursery.cancel_scope.cancel()


async def test_a_restarted_task_restarts_every_watch() -> None:
    ws: WatchSet[str] = WatchSet()
    a = Recorder()
    with trio.move_on_after(0.01):
        ws.add("a", as_informer(a))
        await ws.run()
    assert a.starts == 1 and not a.running
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws.run)
        await trio.testing.wait_all_tasks_blocked()
        assert a.starts == 2 and a.running
        nursery.cancel_scope.cancel()
