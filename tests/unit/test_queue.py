"""The work queue coalesces, never runs one key twice at once, retries, survives a crash."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from ak.kube.errors import ApiError
from ak.metrics import SYNCS
from ak.sync.queue import RetrySoon, WorkQueue


async def test_burst_of_adds_is_one_sync() -> None:
    q: WorkQueue[str] = WorkQueue("t1")
    seen: list[str] = []

    async def sync(key: str) -> None:
        seen.append(key)

    for _ in range(5):
        q.add("a")
    q.add("b")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run_workers, 2, sync)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert sorted(seen) == ["a", "b"]


async def test_key_readded_during_sync_runs_again_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    q: WorkQueue[str] = WorkQueue("t2")
    running = 0
    calls = 0

    async def sync(key: str) -> None:
        nonlocal running, calls
        running += 1
        calls += 1
        assert running == 1, "two workers on one key"
        if calls == 1:
            q.add(key)  # an event arrives mid-sync
        await trio.sleep(1)
        running -= 1

    q.add("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run_workers, 4, sync)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert calls == 2


async def test_failure_is_retried_with_backoff(autojump_clock: trio.testing.MockClock) -> None:
    q: WorkQueue[str] = WorkQueue("t3")
    attempts: list[float] = []

    async def sync(key: str) -> None:
        attempts.append(trio.current_time())
        if len(attempts) < 3:
            raise RuntimeError("transient")

    q.add("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run_workers, 1, sync)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] > attempts[1] - attempts[0]  # the delay grows


async def test_restarted_workers_pick_up_keys_caught_mid_sync(
    autojump_clock: trio.testing.MockClock,
) -> None:
    q: WorkQueue[str] = WorkQueue("t4")
    done: list[str] = []

    async def hang(key: str) -> None:
        await trio.sleep_forever()

    q.add("a")
    with trio.move_on_after(1):
        await q.run_workers(1, hang)  # cancelled while "a" is processing

    async def ok(key: str) -> None:
        done.append(key)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run_workers, 1, ok)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert done == ["a"]


async def test_urgent_keys_jump_the_queue_once_each() -> None:
    q: WorkQueue[str] = WorkQueue("t-urgent")
    seen: list[str] = []

    async def sync(key: str) -> None:
        seen.append(key)
        if key == "u1" and seen.count("u1") == 1:
            q.add("u1", urgent=True)  # re-added mid-sync: urgent again, after the others

    for k in ("c1", "c2", "c3"):
        q.add(k)
    q.add("u1", urgent=True)
    q.add("c2", urgent=True)  # already queued: moves to the front, not twice
    q.add("u2", urgent=True)
    q.add("u2")  # a later plain add leaves it urgent
    assert len(q) == 5
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run_workers, 1, sync)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert seen == ["u1", "c2", "u2", "u1", "c1", "c3"]


async def test_a_bug_is_told_apart_from_an_api_error(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An API error is one warning line; AK's own bug gets its traceback and metric."""
    q: WorkQueue[str] = WorkQueue("t-bug")
    calls: list[str] = []

    async def sync(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise ApiError(500, "InternalError", "etcd timed out")
        if len(calls) == 2:
            raise KeyError("status")  # a bug

    q.add("a")
    with caplog.at_level(logging.WARNING, logger="ak.sync.queue"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(q.run_workers, 1, sync)
            await trio.sleep(10)
            nursery.cancel_scope.cancel()
    assert calls == ["a", "a", "a"]
    api, bug = caplog.records
    assert api.levelno == logging.WARNING and api.exc_info is None
    assert "etcd timed out" in api.getMessage()
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
    assert "a bug in AK" in bug.getMessage()
    assert SYNCS.labels("t-bug", "bug")._value.get() == 1
    assert SYNCS.labels("t-bug", "error")._value.get() == 1


async def test_an_expected_race_is_retried_soon_and_quietly(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    q: WorkQueue[str] = WorkQueue("t-race")
    times: list[float] = []

    async def sync(key: str) -> None:
        times.append(trio.current_time())
        if len(times) == 1:
            raise RetrySoon(0.05, "stale view")

    before = SYNCS.labels("t-race", "retry")._value.get()
    q.add("a")
    with caplog.at_level(logging.INFO, logger="ak.sync.queue"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(q.run_workers, 1, sync)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert len(times) == 2 and times[1] - times[0] == pytest.approx(0.05)
    assert not caplog.records  # no warning: it is not a failure
    assert SYNCS.labels("t-race", "retry")._value.get() == before + 1
