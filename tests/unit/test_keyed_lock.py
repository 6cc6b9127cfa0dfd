"""ak/sync/keyed.py: one holder per key, others free, nothing kept afterwards."""

import trio

from ak.sync.keyed import KeyedLock


async def test_one_key_is_held_by_one_task_at_a_time() -> None:
    locks: KeyedLock[str] = KeyedLock()
    inside: list[str] = []
    most = 0

    async def work(key: str) -> None:
        nonlocal most
        async with locks.hold(key):
            inside.append(key)
            most = max(most, inside.count("a"))
            await trio.sleep(0.01)
            inside.remove(key)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(work, "a")
    assert most == 1
    assert len(locks) == 0


async def test_other_keys_do_not_wait() -> None:
    locks: KeyedLock[str] = KeyedLock()
    entered = trio.Event()
    async with trio.open_nursery() as nursery:

        async def hold_a() -> None:
            async with locks.hold("a"):
                await entered.wait()

        nursery.start_soon(hold_a)
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(1):
            async with locks.hold("b"):
                entered.set()
    assert len(locks) == 0


async def test_a_cancelled_waiter_leaves_no_entry() -> None:
    locks: KeyedLock[str] = KeyedLock()
    release = trio.Event()
    async with trio.open_nursery() as nursery:

        async def hold() -> None:
            async with locks.hold("a"):
                await release.wait()

        nursery.start_soon(hold)
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.05):
            async with locks.hold("a"):
                raise AssertionError("the key is held")
        release.set()
    assert len(locks) == 0
