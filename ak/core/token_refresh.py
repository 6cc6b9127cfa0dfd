"""When to replace a service-account token, and the queue of due refreshes.

The policy is the kubelet's (pkg/kubelet/token/token_manager.go
``requiresRefresh``): a token is replaced once it is older than 80 % of its
lifetime, or older than 24 hours, less a random jitter of up to 10 s so that
pods started together do not refresh together.

One deviation, towards refreshing earlier: a kubelet writes a new token into
the pod's files itself, while AK writes a Secret that the REMOTE kubelet
copies into the pod on its next sync of the pod (about a minute, plus its
cache). A refresh therefore happens at least ``PROPAGATION_MARGIN`` before
expiry, but never before half the lifetime: for the shortest tokens (600 s)
after 420 s instead of 480 s; from 900 s on the 80 % rule is the earlier one.

The lifetime is the ``spec.expirationSeconds`` the API server answered, not
the JWT's ``exp``: for the default 3607 s the API server may extend ``exp``
to a year (``--service-account-extend-token-expiration``) while still
counting the token as expiring after 3607 s. The issue time is AK's own clock
when it asked, so a skew between AK and the API server does not matter.

Times are seconds on any one clock (wall clock in AK, fake clocks in tests);
nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

REFRESH_FRACTION = 0.8
MAX_AGE = 24 * 3600.0
MAX_JITTER = 10.0
PROPAGATION_MARGIN = 180.0

K = TypeVar("K", bound=Hashable)


def refresh_due(issued_at: float, ttl: float, *, max_age: float = MAX_AGE, jitter: float) -> float:
    """When a token issued at ``issued_at`` with lifetime ``ttl`` should be replaced.

    At 80 % of ``ttl``, ``PROPAGATION_MARGIN`` before expiry or ``max_age``
    after issue, whichever is first (but not before half the lifetime).

    ``jitter`` in [0, 1) picks a point in the jitter window: up to 10 s
    before the due time, and never more than a tenth of the token's planned
    age (a ``max_age`` of seconds, as in tests, must not become "now").
    """
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), not {jitter}")
    if ttl <= 0 or max_age <= 0:
        raise ValueError("ttl and max_age must be positive")
    age = min(ttl * REFRESH_FRACTION, max(ttl - PROPAGATION_MARGIN, ttl / 2), max_age)
    return issued_at + age - jitter * min(MAX_JITTER, age / 10)


class RefreshSchedule(Generic[K]):
    """Keys with due times: which is next, and which are due now.

    Setting a key again replaces its due time; entries made stale by that (or
    by ``discard``) stay in the heap and are skipped when they surface.
    """

    def __init__(self) -> None:
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def due(self, key: K) -> float | None:
        return self._due.get(key)

    def set(self, key: K, due: float) -> bool:
        """Schedule ``key`` at ``due``; True if it became the earliest entry."""
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        return self.next_due() == due

    def discard(self, key: K) -> None:
        self._due.pop(key, None)

    def _drop_stale(self) -> None:
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return every key due at or before ``now``, earliest first."""
        out: list[K] = []
        while (due := self.next_due()) is not None and due <= now:
            _, _, key = heapq.heappop(self._heap)
            del self._due[key]
            out.append(key)
        return out
