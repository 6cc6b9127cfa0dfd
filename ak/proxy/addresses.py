"""Which local address each pod on the AK node holds (``ak/core/pod_addresses.py``)."""

from __future__ import annotations

import logging

from ak.core.pod_addresses import Network, allocate, in_range
from ak.core.types import Obj, PodKey

log = logging.getLogger(__name__)


class PodAddresses:
    """Addresses held, by pod. A pod keeps its address for its life; another
    pod of the same name (a new UID) gets its own."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self._held: dict[PodKey, tuple[str, str]] = {}  # key -> (uid, address)
        self._used: set[str] = set()

    def adopt(self, pod: Obj) -> None:
        """Take over the address a pod's local status already shows (a restarted
        AK): done for every cached pod before any pod gets a new one."""
        address: str = (pod.get("status") or {}).get("podIP") or ""
        meta = pod["metadata"]
        if in_range(address, self.net) and address not in self._used:
            self._hold((meta["namespace"], meta["name"]), meta.get("uid", ""), address)

    def address(self, key: PodKey, pod: Obj) -> str | None:
        """The pod's address, picked now if it has none; None if the range is full."""
        uid = pod["metadata"].get("uid", "")
        held = self._held.get(key)
        if held is not None and held[0] == uid:
            return held[1]
        self.release(key)
        self.adopt(pod)
        if key in self._held:
            return self._held[key][1]
        address = allocate(uid, self.net, self._used)
        if address is None:
            log.error("pod %s/%s: no free address left in %s", *key, self.net)
            return None
        self._hold(key, uid, address)
        return address

    def held(self, key: PodKey) -> str | None:
        held = self._held.get(key)
        return None if held is None else held[1]

    def release(self, key: PodKey) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            self._used.discard(held[1])

    def _hold(self, key: PodKey, uid: str, address: str) -> None:
        self._held[key] = (uid, address)
        self._used.add(address)
