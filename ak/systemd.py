"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``), without libsystemd.

systemd passes a datagram socket in ``NOTIFY_SOCKET`` (a path, or ``@name`` for
an abstract socket) and, with ``WatchdogSec=``, the interval in ``WATCHDOG_USEC``
and the main PID in ``WATCHDOG_PID``. A service sends newline-separated
``KEY=VALUE`` datagrams: ``READY=1`` once it is up, ``STATUS=...`` for
``systemctl status``, ``WATCHDOG=1`` more often than the interval, and
``STOPPING=1`` when it shuts down. Without ``NOTIFY_SOCKET`` (not under
systemd) the notifier does nothing.

The watchdog is fed only while AK is healthy, so a wedged AK is killed and
restarted by systemd (``Restart=on-failure``): when trio's loop is blocked the
pings stop by themselves; when a task is stuck in a restart loop the health
callback says so.

The static binary runs AK's Python two processes below the one systemd started
(staticx's and PyInstaller's bootloaders), so ``WATCHDOG_PID`` may name an
ancestor rather than this process; ``ak.service`` sets ``NotifyAccess=all`` so
systemd accepts datagrams from it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

import trio

log = logging.getLogger(__name__)

ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
STARTING = "starting: registering the node and syncing pods"
UNHEALTHY = "unhealthy: a task keeps failing; watchdog pings stopped"
# How deep to look for WATCHDOG_PID among our ancestors (staticx, PyInstaller).
_MAX_WRAPPERS = 3


def socket_address(value: str) -> str | bytes:
    """``NOTIFY_SOCKET`` as an ``AF_UNIX`` address; ``@name`` is abstract (a leading NUL)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    raise ValueError(f"NOTIFY_SOCKET={value!r} is neither an absolute path nor @abstract")


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    return int(fields[1]) if len(fields) > 1 else None


def is_self_or_wrapper(pid: int) -> bool:
    """``pid`` is this process or one of its nearest ancestors (the bootloaders)."""
    current: int | None = os.getpid()
    for _ in range(_MAX_WRAPPERS + 1):
        if current is None or current <= 1:
            return False
        if current == pid:
            return True
        current = _parent_pid(current)
    return False


class SystemdNotifier:
    """Sends AK's state to systemd. ``run`` is a long-lived trio task.

    ``watchdog_interval`` is the period of ``WATCHDOG=1`` (half of
    ``WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises), or None without a
    watchdog. ``poll`` is how often readiness and health are looked at.
    """

    def __init__(
        self,
        address: str | bytes | None,
        watchdog_interval: float | None = None,
        *,
        poll: float = 0.5,
    ) -> None:
        self.address = address
        self.watchdog_interval = watchdog_interval
        self.poll = min(poll, watchdog_interval) if watchdog_interval else poll
        self.ready_sent = False
        self.status = ""
        self.sent: deque[str] = deque(maxlen=100)  # the latest messages sent, for debugging
        self._sock: trio.socket.SocketType | None = None

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str] | None = None, *, unset: bool = True
    ) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET``/``WATCHDOG_*``; with ``unset`` remove them, so that
        child processes (kubeconfig exec plugins) do not talk to systemd as AK."""
        env: MutableMapping[str, str] = os.environ if environ is None else environ
        found: Mapping[str, str] = {k: env[k] for k in ENV_VARS if k in env}
        if unset:
            for key in found:
                del env[key]
        address: str | bytes | None = None
        if found.get("NOTIFY_SOCKET"):
            try:
                address = socket_address(found["NOTIFY_SOCKET"])
            except ValueError as e:
                log.warning("systemd notifications off: %s", e)
        interval: float | None = None
        usec = found.get("WATCHDOG_USEC", "")
        pid = found.get("WATCHDOG_PID", "")
        if usec:
            try:
                micros = int(usec)
                if micros <= 0:
                    raise ValueError
            except ValueError:
                log.warning(
                    "systemd watchdog off: WATCHDOG_USEC=%r is not a positive integer", usec
                )
            else:
                if pid and not (pid.isdigit() and is_self_or_wrapper(int(pid))):
                    log.info("systemd watchdog is for process %s, not AK's; not feeding it", pid)
                else:
                    interval = micros / 2 / 1_000_000
        return cls(address, interval)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    async def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False (logged) if it could not be sent.

        A lost notification must never stop AK: without READY systemd times the
        start out, without WATCHDOG it restarts AK, both of which it reports.
        """
        if self.address is None:
            return False
        message = "\n".join(assignments)
        try:
            if self._sock is None:
                self._sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            await self._sock.sendto(message.encode(), self.address)
        except OSError as e:
            log.warning("systemd notification %r not sent: %s", message, e)
            return False
        self.sent.append(message)
        return True

    async def run(self, is_ready: Callable[[], bool], is_healthy: Callable[[], bool]) -> None:
        """Send READY=1 once ``is_ready()``; WATCHDOG=1 every interval while
        ``is_healthy()``; STATUS on each change; STOPPING=1 when cancelled (AK stops).
        READY is sent once per notifier, also across restarts of this task."""
        if self.address is None:
            await trio.sleep_forever()
        next_ping = trio.current_time()
        try:
            while True:
                lines = []
                if not self.ready_sent and is_ready():
                    self.ready_sent = True
                    lines.append("READY=1")
                healthy = is_healthy()
                now_status = UNHEALTHY if not healthy else "ready" if self.ready_sent else STARTING
                if now_status != self.status:
                    if not healthy:
                        log.error("AK is unhealthy: systemd watchdog pings stop")
                    elif self.status == UNHEALTHY:
                        log.warning("AK is healthy again: systemd watchdog pings resume")
                    self.status = now_status
                    lines.append(f"STATUS={now_status}")
                now = trio.current_time()
                if self.watchdog_interval and healthy and now >= next_ping:
                    lines.append("WATCHDOG=1")
                    next_ping = now + self.watchdog_interval
                if lines:
                    await self.notify(*lines)
                await trio.sleep(self.poll)
        except trio.Cancelled:  # AK is shutting down (not a crash of this task)
            with trio.CancelScope(shield=True):
                await self.notify("STOPPING=1", "STATUS=stopping")
            raise
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
