"""sd_notify against a real datagram socket, as systemd listens for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from ak.sync.supervisor import Supervisor
from ak.systemd import STARTING, UNHEALTHY, SystemdNotifier, is_self_or_wrapper, socket_address


class Listener:
    """What systemd would see: every datagram, split into KEY=VALUE lines."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.messages: list[list[str]] = []

    async def collect(self) -> None:
        while True:
            data = await self.sock.recv(4096)
            self.messages.append(data.decode().split("\n"))

    def lines(self) -> list[str]:
        return [line for m in self.messages for line in m]

    def count(self, line: str) -> int:
        return self.lines().count(line)


@asynccontextmanager
async def listening(address: str | bytes) -> AsyncIterator[Listener]:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(address)
    listener = Listener(sock)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.collect)
            yield listener
            await trio.sleep(0.05)  # let the last datagrams arrive
            nursery.cancel_scope.cancel()
    finally:
        sock.close()


class Flag:
    def __init__(self, value: bool) -> None:
        self.value = value

    def __call__(self) -> bool:
        return self.value


async def wait_for(what: str, probe: Callable[[], bool], limit: float = 5) -> None:
    with trio.move_on_after(limit):
        while not probe():  # noqa: ASYNC110 - polling what another task records
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out waiting for {what}")


def test_socket_address() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@ak/notify") == b"\0ak/notify"
    with pytest.raises(ValueError, match="neither an absolute path"):
        socket_address("relative/sock")


def test_from_environ_reads_and_unsets() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "PATH": "/bin"}
    n = SystemdNotifier.from_environ(env)
    assert n.address == b"\0x"
    assert n.watchdog_interval == 15.0  # half of WatchdogSec
    assert env == {"PATH": "/bin"}  # child processes must not inherit them
    kept = {"NOTIFY_SOCKET": "/run/n"}
    assert SystemdNotifier.from_environ(kept, unset=False).address == "/run/n"
    assert kept == {"NOTIFY_SOCKET": "/run/n"}


def test_from_environ_without_systemd() -> None:
    n = SystemdNotifier.from_environ({})
    assert not n.enabled
    assert n.watchdog_interval is None
    assert not SystemdNotifier.from_environ({"NOTIFY_SOCKET": "bad"}).enabled


def test_watchdog_pid_must_be_ak_or_its_bootloaders() -> None:
    base = {"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "2000000"}
    mine = SystemdNotifier.from_environ({**base, "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 1.0
    # The static binary's bootloaders are AK's parents: systemd's main PID is one of
    # them. A child of this test stands in for AK (pytest's own parent may be gone).
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, os, sys; from ak.systemd import SystemdNotifier; "
            "env = {**json.loads(sys.argv[1]), 'WATCHDOG_PID': str(os.getppid())}; "
            "print(SystemdNotifier.from_environ(env).watchdog_interval)",
            json.dumps(base),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "1.0"
    assert SystemdNotifier.from_environ({**base, "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert SystemdNotifier.from_environ({**base, "WATCHDOG_USEC": "0"}).watchdog_interval is None
    assert SystemdNotifier.from_environ({**base, "WATCHDOG_USEC": "x"}).watchdog_interval is None
    assert is_self_or_wrapper(os.getpid())
    assert not is_self_or_wrapper(1)


async def test_not_under_systemd_idles_quietly() -> None:
    n = SystemdNotifier(None)
    with trio.move_on_after(0.1) as scope:
        await n.run(lambda: True, lambda: True)
    assert scope.cancelled_caught
    assert not await n.notify("READY=1")
    assert list(n.sent) == []


async def test_ready_status_watchdog_and_stopping(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    ready = Flag(False)
    n = SystemdNotifier(path, watchdog_interval=0.05, poll=0.01)
    async with listening(path) as systemd, trio.open_nursery() as nursery:
        nursery.start_soon(n.run, ready, lambda: True)
        # Pings start before READY: systemd's watchdog runs during start-up too.
        await wait_for("watchdog pings", lambda: systemd.count("WATCHDOG=1") >= 2)
        assert systemd.messages[0][:1] == [f"STATUS={STARTING}"]
        assert "READY=1" not in systemd.lines()
        ready.value = True
        await wait_for("READY=1", lambda: "READY=1" in systemd.lines())
        pings = systemd.count("WATCHDOG=1")
        await wait_for("more pings", lambda: systemd.count("WATCHDOG=1") >= pings + 3)
        nursery.cancel_scope.cancel()
    lines = systemd.lines()
    assert lines.count("READY=1") == 1
    ready_msg = next(m for m in systemd.messages if "READY=1" in m)
    assert "STATUS=ready" in ready_msg
    assert systemd.messages[-1] == ["STOPPING=1", "STATUS=stopping"]


async def test_watchdog_stops_while_unhealthy_and_resumes() -> None:
    address = f"@ak-test-{uuid.uuid4().hex}"  # an abstract socket, as systemd may pass
    healthy = Flag(True)
    n = SystemdNotifier(socket_address(address), watchdog_interval=0.02, poll=0.005)
    async with listening(socket_address(address)) as systemd, trio.open_nursery() as nursery:
        nursery.start_soon(n.run, lambda: True, healthy)
        await wait_for("pings", lambda: systemd.count("WATCHDOG=1") >= 2)
        healthy.value = False
        await wait_for("unhealthy status", lambda: f"STATUS={UNHEALTHY}" in systemd.lines())
        stalled = systemd.count("WATCHDOG=1")
        await trio.sleep(0.2)  # ten intervals: systemd would kill AK now
        assert systemd.count("WATCHDOG=1") == stalled
        healthy.value = True
        await wait_for("pings again", lambda: systemd.count("WATCHDOG=1") > stalled)
        assert systemd.lines()[-2:] == ["STATUS=ready", "WATCHDOG=1"]
        nursery.cancel_scope.cancel()


async def test_wedged_supervisor_task_stops_the_watchdog(tmp_path: Path) -> None:
    """A task failing in a loop makes the supervisor unhealthy, and pings stop."""
    path = str(tmp_path / "notify")
    n = SystemdNotifier(path, watchdog_interval=0.05, poll=0.01)
    failing = trio.Event()

    async def broken() -> None:
        await failing.wait()
        raise RuntimeError("wedged")

    async with listening(path) as systemd, trio.open_nursery() as nursery:
        sup = Supervisor(nursery, max_failures=2)
        sup.start("broken", broken)
        sup.start("systemd-notify", lambda: n.run(lambda: True, sup.healthy))
        await wait_for("pings", lambda: systemd.count("WATCHDOG=1") >= 2)
        assert sup.healthy()
        failing.set()  # fails at once, again after a ~1 s backoff: stuck
        await wait_for("stuck", lambda: not sup.healthy(), limit=10)
        assert sup.stuck() == ["broken"]
        await wait_for("unhealthy status", lambda: f"STATUS={UNHEALTHY}" in systemd.lines())
        stalled = systemd.count("WATCHDOG=1")
        await trio.sleep(0.3)
        assert systemd.count("WATCHDOG=1") == stalled
        nursery.cancel_scope.cancel()


async def test_lost_notifications_do_not_stop_ak(tmp_path: Path) -> None:
    n = SystemdNotifier(str(tmp_path / "nobody-listens"), watchdog_interval=0.01, poll=0.01)
    with trio.move_on_after(0.1):
        await n.run(lambda: True, lambda: True)
    assert list(n.sent) == []


async def test_supervisor_recovers_after_a_long_healthy_run(autojump_clock: object) -> None:
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise RuntimeError("boom")
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        sup = Supervisor(nursery, max_failures=3)
        sup.start("flaky", flaky, healthy_after=60)
        await trio.sleep(30)  # three failures and backoffs (1 + 2 + 4 s), now running
        assert attempts == 4
        assert sup.stuck() == ["flaky"]
        await trio.sleep(61)
        assert sup.healthy()
        nursery.cancel_scope.cancel()
