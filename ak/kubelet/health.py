"""Whether the kubelet API can serve, for the Node's condition and its Events.

The serving certificate and the listener report here; the node controller
writes the condition (``ak.core.kubelet_status``) on every change, and each
report of a problem is a Warning Event on the Node, so a crash loop counts up
on one Event instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ak.core.kubelet_status import KubeletAPIStatus, starting

# (reason, message): records a Warning Event on the Node.
Reporter = Callable[[str, str], Awaitable[None]]


class KubeletAPIHealth:
    def __init__(self, report: Reporter | None = None) -> None:
        self.status = starting()
        self.changed = trio.Event()
        self.report = report

    async def set(self, status: KubeletAPIStatus) -> None:
        if status != self.status:
            self.status = status
            self.changed.set()
            self.changed = trio.Event()
        if status.unavailable and self.report is not None:
            await self.report(status.reason, status.message)


def leaf(error: BaseException) -> BaseException:
    """The one error inside nested single-member groups (trio's nurseries wrap
    what a task raises), whose text says what happened."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def describe(error: BaseException) -> str:
    e = leaf(error)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
