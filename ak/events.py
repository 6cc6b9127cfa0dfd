"""Events on local objects, so `kubectl describe` shows what AK ran into.

Repeats of the same (object, reason, message) within a window update the
existing Event's count instead of creating new ones, like the kubelet's
recorder, and a burst of distinct events is capped.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import trio

from ak.core.events import event_object
from ak.core.timefmt import format_time
from ak.core.types import Obj
from ak.kube.client import KubeClient, path
from ak.kube.errors import KubeError, NotFound

log = logging.getLogger(__name__)

REPEAT_WINDOW = 600.0


class EventRecorder:
    def __init__(self, client: KubeClient, host: str) -> None:
        self.client = client
        self.host = host
        # (uid, reason, message) -> (event namespace, name, count, first seen)
        self._seen: dict[tuple[str, str, str], tuple[str, str, int, float]] = {}

    async def record(self, obj: Obj, reason: str, message: str, type_: str = "Warning") -> None:
        """Best effort: an Event that cannot be written is logged, never raised."""
        meta = obj.get("metadata", {})
        key = (meta.get("uid", ""), reason, message)
        now = trio.current_time()
        try:
            seen = self._seen.get(key)
            if seen and now - seen[3] < REPEAT_WINDOW:
                ns, name, count, first = seen
                try:
                    await self.client.patch(
                        path("events", namespace=ns, name=name),
                        {"count": count + 1, "lastTimestamp": format_time(datetime.now(UTC))},
                    )
                    self._seen[key] = (ns, name, count + 1, first)
                    return
                except NotFound:
                    pass
            ev = event_object(
                obj,
                reason=reason,
                message=message,
                type_=type_,
                host=self.host,
                now=datetime.now(UTC),
                suffix=secrets.token_hex(8),
            )
            ns = ev["metadata"]["namespace"]
            await self.client.create(path("events", namespace=ns), ev)
            self._seen[key] = (ns, ev["metadata"]["name"], 1, now)
            if len(self._seen) > 10000:
                self._forget_old(now)
        except KubeError as e:
            log.warning(
                "could not record event %s on %s/%s: %s",
                reason,
                meta.get("namespace"),
                meta.get("name"),
                e,
            )

    def _forget_old(self, now: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if now - v[3] < REPEAT_WINDOW}
