"""The node's status loop reports a change when it happens, not at the next check."""

from __future__ import annotations

import trio
import trio.testing

from ak.node.controller import (
    STARTUP_GRACE,
    STATUS_CHECK_EVERY,
    NodeController,
    NodeSpec,
    RemoteHealth,
)
from tests.unit.fixtures import offline_client

SPEC = NodeSpec("n", {}, False, "127.0.0.1", 10250, "v0", {}, {})


def _controller(synced: trio.Event) -> NodeController:
    return NodeController(
        offline_client("local"), offline_client("remote"), SPEC, RemoteHealth(), synced=synced
    )


def test_caches_syncing_wakes_the_status_loop() -> None:
    # A fresh node went Ready up to 10 s late: the status loop woke only on
    # remote-health changes, and the caches synced just after the first one.
    async def main() -> float:
        synced = trio.Event()
        node = _controller(synced)
        node.health.set(True, "KubeletReady", "")
        assert node.desired()["status"]["conditions"][-1]["status"] == "False"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_set_later, synced)
            await node._until_changed()
        assert node.desired()["status"]["conditions"][-1]["status"] == "True"
        return trio.current_time()

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == 1


def test_nothing_changing_waits_for_the_periodic_check() -> None:
    async def main() -> float:
        synced = trio.Event()
        synced.set()
        await _controller(synced)._until_changed()
        return trio.current_time()

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == STATUS_CHECK_EVERY


async def _set_later(event: trio.Event) -> None:
    await trio.sleep(1)
    event.set()


def test_a_restart_keeps_a_ready_node_ready_while_the_caches_sync() -> None:
    # The previous AK's node was Ready: reporting "StartingUp" for the second the
    # caches take made it NotReady and tainted, and pods scheduled then failed.
    async def main() -> None:
        synced = trio.Event()
        node = _controller(synced)
        node._ready_until = trio.current_time() + STARTUP_GRACE  # found Ready at registration
        assert node.desired()["status"]["conditions"][-1]["status"] == "True"  # not contacted
        node.health.set(False, "RemoteUnreachable", "connection refused")
        assert node.desired()["status"]["conditions"][-1]["status"] == "False"  # a verdict
        node.health.set(True, "KubeletReady", "")
        assert node.desired()["status"]["conditions"][-1]["status"] == "True"  # syncing
        await trio.sleep(STARTUP_GRACE)
        # Caches that never sync (a permission missing) are still reported.
        assert node.desired()["status"]["conditions"][-1]["status"] == "False"
        synced.set()
        assert node.desired()["status"]["conditions"][-1]["status"] == "True"

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_ready_is_reported_only_once_the_api_server_holds_ready() -> None:
    # systemd's READY=1 was sent between registration (written "StartingUp")
    # and the status patch that said Ready: `systemctl start` returned with a
    # NotReady node (a CI failure of test_real_systemd).
    node = _controller(trio.Event())
    starting = node.desired()
    assert node._written(starting) is starting
    assert not node.reported_ready.is_set()
    node.synced.set()  # type: ignore[union-attr]
    node.health.set(True, "KubeletReady", "")
    node._written(node.desired())
    assert node.reported_ready.is_set()
