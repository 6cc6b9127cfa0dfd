"""A watch open only while wanted (ak/kube/ondemand.py), driven by a stand-in informer."""

from __future__ import annotations

import trio
import trio.testing

from ak.kube.ondemand import OnDemand


class StandIn:
    """Lists at once, then 'watches' until cancelled; counts how often it was opened."""

    def __init__(self) -> None:
        self.synced = trio.Event()
        self.opened = 0
        self.watching = False
        self.cached = 0

    def size(self) -> int:
        return self.cached

    async def run(self) -> None:
        self.opened += 1
        self.synced.set()
        self.watching = True
        try:
            await trio.sleep_forever()
        finally:
            self.watching = False


async def _lists_first_closes_when_unwanted_and_reopens_on_a_poke() -> None:
    informer, claims = StandIn(), [0]
    watch = OnDemand(informer, lambda: informer.size() > 0 or claims[0] > 0, linger=60)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.run)
        await trio.sleep(1)
        assert informer.opened == 1 and informer.watching  # the first LIST always runs
        await trio.sleep(61)
        assert not informer.watching  # nothing cached, nothing claimed: closed
        claims[0] = 1
        watch.poke()
        await trio.sleep(1)
        assert informer.opened == 2 and informer.watching
        await trio.sleep(600)
        assert informer.watching  # still claimed: stays open
        claims[0], informer.cached = 0, 1
        await trio.sleep(600)
        assert informer.watching  # a copy left: stays open until it is gone
        informer.cached = 0
        await trio.sleep(61)
        assert not informer.watching
        nursery.cancel_scope.cancel()


def test_the_watch_lists_first_closes_when_unwanted_and_reopens_on_a_poke() -> None:
    trio.run(
        _lists_first_closes_when_unwanted_and_reopens_on_a_poke,
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
