"""An informer whose watch is open only while there is something to follow.

AK's copies of Services, NetworkPolicies and PodDisruptionBudgets exist only
while the node's pods use them, and most tenants use few or none; yet each
kind was a watch held on the remote API server for AK's lifetime (per AK: at
100 AKs, 300 idle watchers). Here the first LIST always runs (leftover copies
must be found and collected after a restart); after that the watch stays open
while ``wanted()`` (the cache has copies, or pods claim some), and closes once
it has not been wanted for ``linger`` seconds. ``poke()`` (a claim) opens it
again: it resumes from the last resourceVersion, or relists if that is gone.

While closed the cache is empty and nothing of AK's exists to change, so a
claim's first sync creating the copy straight away is right; should one exist
after all, the create's conflict leads to adopting it (``Replicator``).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ak.kube.informer import Informer

LINGER = 30.0


class OnDemand:
    def __init__(
        self, informer: Informer, wanted: Callable[[], bool], *, linger: float = LINGER
    ) -> None:
        self.informer = informer
        self.wanted = wanted
        self.linger = linger
        self.open = False
        self._poked = trio.Event()

    def poke(self) -> None:
        """Something may now be wanted: open the watch if it is closed."""
        self._poked.set()

    async def run(self) -> None:
        while True:
            self._poked = trio.Event()
            if self.informer.synced.is_set() and not self.wanted():
                await self._poked.wait()
                continue
            async with trio.open_nursery() as nursery:
                self.open = True
                try:
                    nursery.start_soon(self.informer.run)
                    await self._until_unwanted()
                    nursery.cancel_scope.cancel()
                finally:
                    self.open = False

    async def _until_unwanted(self) -> None:
        await self.informer.synced.wait()
        while True:
            await trio.sleep(self.linger)
            if not self.wanted():
                return
