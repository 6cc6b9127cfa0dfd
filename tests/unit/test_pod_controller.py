"""The generic pod controller's rules, against a provider that keeps pods in memory.

The provider and the local writes are plain in-memory stand-ins of the two
interfaces (``ak/pods/provider.py``, ``LocalWrites``); the real ones run in
the cluster tests. Each test drives ``sync`` the way the work queue would.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from ak.core.errors import Notice, TranslationError
from ak.core.labels import ANNOTATION_LOCAL_UID
from ak.core.pod_addresses import parse_range
from ak.kube.errors import Conflict
from ak.kube.registry import Informers
from ak.pods.controller import PENDING_QUIET, SETTLE_QUIET, PodController
from ak.pods.provider import LocalPods, Notify, Outcome
from ak.proxy.addresses import PodAddresses
from ak.sync.queue import RetrySoon
from tests.unit.fixtures import offline_client

Obj = dict[str, Any]
PodKey = tuple[str, str]
KEY = ("ns", "web-0")


class MemoryProvider:
    """Runs pods nowhere: a dict of twins, and a record of every call."""

    def __init__(self) -> None:
        self.synced = trio.Event()
        self.synced.set()
        self.twins: dict[PodKey, Obj] = {}
        self.calls: list[tuple[str, PodKey]] = []
        self.fail_create: TranslationError | None = None
        self.notices: list[Notice] = []
        self.made = 0
        self.live_at_start: list[PodKey] | None = None

    async def run(self, notify: Notify, local: LocalPods) -> None:
        # What a provider may clean up after a restart waits for the local view.
        await local.synced.wait()
        self.live_at_start = [_key(pod) for pod in local.live()]
        await trio.sleep_forever()

    def get(self, key: PodKey) -> Obj | None:
        return self.twins.get(key)

    async def create(self, local: Obj) -> Outcome:
        key = _key(local)
        self.calls.append(("create", key))
        if self.fail_create is not None:
            raise self.fail_create
        self.made += 1
        self.twins[key] = {
            "metadata": {
                "name": key[1],
                "uid": f"twin-{self.made}",
                "creationTimestamp": "2026-12-04T10:00:01Z",
                "annotations": {ANNOTATION_LOCAL_UID: local["metadata"]["uid"]},
            },
            "status": {"phase": "Running", "podIP": "10.0.0.9"},
        }
        return Outcome(list(self.notices))

    async def update(self, local: Obj, remote: Obj) -> Outcome:
        self.calls.append(("update", _key(local)))
        return Outcome()

    async def delete(self, key: PodKey, remote: Obj, grace: int | None) -> None:
        self.calls.append(("delete", key))
        remote["metadata"]["deletionTimestamp"] = "2026-12-04T10:05:00Z"
        remote["metadata"]["deletionGracePeriodSeconds"] = grace

    def status(self, local: Obj, remote: Obj) -> Obj:
        status: Obj = remote["status"]
        return status

    def release(self, key: PodKey) -> None:
        self.calls.append(("release", key))

    def did(self, what: str) -> int:
        return sum(1 for call, _ in self.calls if call == what)


class MemoryWrites:
    def __init__(self) -> None:
        self.statuses: list[Obj] = []
        self.deleted: list[str] = []
        self.events: list[tuple[str, str]] = []

    async def status(self, local: Obj, patch: Obj) -> None:
        self.statuses.append(patch)

    async def delete_for_good(self, local: Obj) -> None:
        self.deleted.append(local["metadata"]["uid"])

    async def event(self, local: Obj, reason: str, message: str) -> None:
        self.events.append((reason, message))


def _key(local: Obj) -> PodKey:
    return (local["metadata"]["namespace"], local["metadata"]["name"])


def local_pod(uid: str = "uid-1", **status: Any) -> Obj:
    return {
        "metadata": {
            "namespace": KEY[0],
            "name": KEY[1],
            "uid": uid,
            "resourceVersion": "1",
            "creationTimestamp": "2026-12-04T10:00:00Z",
        },
        "spec": {"nodeName": "vk", "containers": [{"name": "c", "image": "x"}]},
        "status": status or {"phase": "Pending"},
    }


@pytest.fixture
async def rig() -> Any:
    local = offline_client("local")
    provider = MemoryProvider()
    writes = MemoryWrites()
    controller = PodController(local, "vk", provider, writes, informers=Informers())
    yield controller, provider, writes
    await local.aclose()


def see(controller: PodController, pod: Obj | None, old: Obj | None = None) -> None:
    """The local watch delivers a change."""
    if pod is None:
        assert old is not None
        controller.local_pods._apply({"type": "DELETED", "object": old})
    else:
        controller.local_pods._apply({"type": "MODIFIED", "object": pod})


Rig = tuple[PodController, MemoryProvider, MemoryWrites]


async def test_a_new_pod_is_created_once_then_updated_and_its_status_mirrored(rig: Rig) -> None:
    controller, provider, writes = rig
    see(controller, local_pod())
    assert await controller.sync(KEY) is None
    assert await controller.sync(KEY) is None
    assert (provider.did("create"), provider.did("update")) == (1, 1)
    assert writes.statuses == [{"phase": "Running", "podIP": "10.0.0.9"}]
    assert writes.events == []


async def test_after_a_restart_a_running_twin_is_kept(rig: Rig) -> None:
    controller, provider, writes = rig
    running = local_pod(phase="Running", podIP="10.0.0.9")
    provider.twins[KEY] = {
        "metadata": {"name": KEY[1], "uid": "t", "annotations": {ANNOTATION_LOCAL_UID: "uid-1"}},
        "status": {"phase": "Running", "podIP": "10.0.0.9"},
    }
    see(controller, running)
    await controller.sync(KEY)
    assert provider.did("create") == 0 and provider.did("delete") == 0
    assert writes.statuses == []  # nothing changed: nothing written


async def test_graceful_deletion_then_the_final_delete(rig: Rig) -> None:
    controller, provider, writes = rig
    see(controller, local_pod())
    await controller.sync(KEY)
    deleting = local_pod()
    deleting["metadata"]["deletionTimestamp"] = "2026-12-04T10:05:00Z"
    deleting["metadata"]["deletionGracePeriodSeconds"] = 7
    see(controller, deleting)
    await controller.sync(KEY)
    assert provider.twins[KEY]["metadata"]["deletionGracePeriodSeconds"] == 7
    assert writes.deleted == []  # not before the twin is gone
    await controller.sync(KEY)
    assert provider.did("delete") == 1  # asked once
    del provider.twins[KEY]
    await controller.sync(KEY)
    assert writes.deleted == ["uid-1"]
    assert ("release", KEY) in provider.calls


async def test_a_twin_whose_pod_is_gone_is_stopped(rig: Rig) -> None:
    controller, provider, writes = rig
    pod = local_pod()
    see(controller, pod)
    await controller.sync(KEY)
    see(controller, None, old=pod)
    await controller.sync(KEY)
    assert provider.did("delete") == 1
    del provider.twins[KEY]
    await controller.sync(KEY)
    assert ("release", KEY) in provider.calls
    assert writes.deleted == []


async def test_a_twin_of_an_earlier_pod_of_the_same_name_is_replaced(rig: Rig) -> None:
    controller, provider, _ = rig
    see(controller, local_pod("uid-1"))
    await controller.sync(KEY)
    see(controller, local_pod("uid-2"))  # a StatefulSet made web-0 again
    await controller.sync(KEY)
    assert (provider.did("delete"), provider.did("update")) == (1, 0)
    del provider.twins[KEY]
    await controller.sync(KEY)
    assert provider.twins[KEY]["metadata"]["annotations"][ANNOTATION_LOCAL_UID] == "uid-2"


async def test_the_original_aks_twin_is_kept_for_the_provider_to_adopt(rig: Rig) -> None:
    controller, provider, _ = rig
    # No local uid on the twin, made after the local pod: the original AK's
    # (``core/incarnation``). The provider's update adopts it (ak/pods/remote.py).
    provider.twins[KEY] = {
        "metadata": {"name": KEY[1], "uid": "t", "creationTimestamp": "2026-12-04T10:00:03Z"},
        "status": {"phase": "Running"},
    }
    see(controller, local_pod(phase="Running"))
    await controller.sync(KEY)
    assert (provider.did("update"), provider.did("delete"), provider.did("create")) == (1, 0, 0)


async def test_a_lost_twin_fails_the_pod_and_nothing_is_recreated(rig: Rig) -> None:
    controller, provider, writes = rig
    see(controller, local_pod(phase="Running", startTime="2026-12-04T10:00:02Z"))
    await controller.sync(KEY)
    assert provider.did("create") == 0
    assert writes.statuses[-1]["phase"] == "Failed"
    assert [r for r, _ in writes.events] == ["RemotePodMissing"]


async def test_a_finished_pod_is_not_run_again(rig: Rig) -> None:
    controller, provider, _ = rig
    see(controller, local_pod(phase="Succeeded"))
    await controller.sync(KEY)
    assert provider.did("create") == 0
    assert ("release", KEY) in provider.calls


async def test_a_failure_is_told_once_per_pod_incarnation(rig: Rig) -> None:
    controller, provider, writes = rig
    provider.fail_create = TranslationError("MandatorySecretNotFound", "Secret 'db' not found")
    see(controller, local_pod("uid-1"))
    for _ in range(3):
        with pytest.raises(TranslationError):
            await controller.sync(KEY)
    assert writes.events == [("MandatorySecretNotFound", "Secret 'db' not found")]
    assert writes.statuses[0]["reason"] == "MandatorySecretNotFound"
    see(controller, local_pod("uid-2"))  # the same name again, the same failure
    with pytest.raises(TranslationError):
        await controller.sync(KEY)
    assert len(writes.events) == 2


async def test_notices_become_one_event_each(rig: Rig) -> None:
    controller, provider, writes = rig
    provider.notices = [Notice("OptionalConfigMapNotFound", "configmap 'x' not found")]
    see(controller, local_pod())
    await controller.sync(KEY)
    assert writes.events == [("OptionalConfigMapNotFound", "configmap 'x' not found")]


async def test_a_settling_problem_is_retried_quietly_then_reported(
    rig: Rig, autojump_clock: trio.testing.MockClock
) -> None:
    controller, provider, writes = rig
    provider.fail_create = TranslationError(
        "RemoteNamespaceTerminating", "still being deleted", settling=True
    )
    see(controller, local_pod())
    with pytest.raises(TranslationError):
        await controller.sync(KEY)
    assert (writes.events, writes.statuses) == ([], [])
    await trio.sleep(SETTLE_QUIET + 1)
    with pytest.raises(TranslationError):
        await controller.sync(KEY)
    assert [r for r, _ in writes.events] == ["RemoteNamespaceTerminating"]
    assert writes.statuses[0]["reason"] == "RemoteNamespaceTerminating"


async def test_the_provider_sees_the_live_pods_once_both_views_are_synced(rig: Rig) -> None:
    controller, provider, _ = rig
    live, done = local_pod("uid-1"), local_pod("uid-2", phase="Succeeded")
    done["metadata"]["name"] = "job-1"
    see(controller, live)
    see(controller, done)
    controller.local_pods.synced.set()
    async with trio.open_nursery() as nursery:
        controller.queue.run_workers = _never  # type: ignore[method-assign]
        nursery.start_soon(controller.run)
        await controller.synced.wait()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    # The finished job is not live: what only it used may be collected.
    assert provider.live_at_start == [KEY]


async def _never(count: int, sync: object) -> None:
    await trio.sleep_forever()


async def _created_pending(rig: Rig, reason: str = "ContainerCreating") -> Obj:
    """A new pod created remotely; its twin Pending with one container waiting for ``reason``."""
    controller, provider, _ = rig
    see(controller, local_pod())
    await controller.sync(KEY)
    twin = provider.twins[KEY]
    waiting = {"name": "c", "state": {"waiting": {"reason": reason}}}
    twin["status"] = {"phase": "Pending", "containerStatuses": [waiting]}
    return twin


async def test_a_plain_pending_status_is_folded_into_the_next(rig: Rig) -> None:
    controller, _, writes = rig
    twin = await _created_pending(rig)
    held = await controller.sync(KEY)
    assert held is not None and 0 < held <= PENDING_QUIET
    assert writes.statuses == []  # held back
    twin["status"] = {"phase": "Running", "podIP": "10.0.0.9"}
    assert await controller.sync(KEY) is None
    assert writes.statuses == [{"phase": "Running", "podIP": "10.0.0.9"}]  # one write


async def test_a_pending_status_is_written_once_the_pod_is_slow_or_in_trouble(rig: Rig) -> None:
    controller, _, writes = rig
    twin = await _created_pending(rig, "ErrImagePull")
    pulling = twin["status"]["containerStatuses"]
    assert await controller.sync(KEY) is None
    assert writes.statuses[-1]["containerStatuses"] == pulling  # at once
    see(controller, local_pod(phase="Pending"))  # the status written is not yet seen
    waiting = {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}
    twin["status"] = {"phase": "Pending", "containerStatuses": [waiting]}
    assert await controller.sync(KEY) is None  # no longer new: no holding back
    assert writes.statuses[-1]["containerStatuses"] == [waiting]


async def test_slow_start_written_after_the_quiet_time(rig: Rig) -> None:
    controller, _, writes = rig
    twin = await _created_pending(rig)
    assert await controller.sync(KEY) is not None
    controller._created_at[KEY] -= PENDING_QUIET  # the quiet time has passed
    assert await controller.sync(KEY) is None
    assert writes.statuses == [{"containerStatuses": twin["status"]["containerStatuses"]}]


async def test_the_final_delete_is_made_once(rig: Rig) -> None:
    controller, provider, writes = rig
    see(controller, local_pod())
    await controller.sync(KEY)
    deleting = local_pod()
    deleting["metadata"]["deletionTimestamp"] = "2026-12-04T10:05:00Z"
    see(controller, deleting)
    await controller.sync(KEY)
    del provider.twins[KEY]
    await controller.sync(KEY)
    await controller.sync(KEY)  # an event queued before the watch shows the pod gone
    assert writes.deleted == ["uid-1"]
    see(controller, None, old=deleting)
    await controller.sync(KEY)
    # Released again once the watch shows it gone: the provider looks at its
    # namespace then (released before, the pod still counted as in use).
    assert provider.did("release") == 2
    assert writes.deleted == ["uid-1"]


async def test_a_status_written_from_a_stale_view_is_retried_soon(rig: Rig) -> None:
    controller, _, writes = rig
    see(controller, local_pod())
    await controller.sync(KEY)

    async def conflict(local: Obj, patch: Obj) -> None:
        raise Conflict(409, "Conflict", "the object has been modified")

    writes.status = conflict  # type: ignore[method-assign]
    with pytest.raises(RetrySoon) as raised:
        await controller.sync(KEY)
    assert raised.value.delay < 0.1


async def test_a_pod_keeps_its_local_address_through_deletion_and_restart() -> None:
    """With a pod address range the local status shows the local address, never
    the twin's IP: while running, while terminating (a regression: the
    terminating status was the twin's, so endpoints and AK's own listener
    moved to the remote IP), and after a restart that finds it in the status."""
    local = offline_client("local")
    provider, writes = MemoryProvider(), MemoryWrites()
    controller = PodController(
        local,
        "vk",
        provider,
        writes,
        informers=Informers(),
        addresses=PodAddresses(parse_range("10.250.0.0/24")),
    )
    try:
        see(controller, local_pod())
        await controller.sync(KEY)
        await controller.sync(KEY)
        address = writes.statuses[-1]["podIP"]
        assert address.startswith("10.250.0.")
        assert writes.statuses[-1]["podIPs"] == [{"ip": address}]

        running = local_pod(phase="Running", podIP=address, podIPs=[{"ip": address}])
        deleting = {**running, "metadata": {**running["metadata"]}}
        deleting["metadata"]["deletionTimestamp"] = "2026-12-04T10:05:00Z"
        see(controller, deleting)
        writes.statuses.clear()
        await controller.sync(KEY)
        assert all(s.get("podIP", address) == address for s in writes.statuses), writes.statuses

        # A restarted AK (a new controller) takes the address from the status.
        after, held = MemoryWrites(), PodAddresses(parse_range("10.250.0.0/24"))
        again = PodController(local, "vk", provider, after, informers=Informers(), addresses=held)
        held.adopt(running)  # what run() does for every cached pod
        see(again, running)
        await again.sync(KEY)
        assert after.statuses == []
    finally:
        await local.aclose()


async def test_the_echo_of_aks_own_status_write_costs_no_sync(rig: Rig) -> None:
    """The watch brings each status write back; syncing on it found nothing to
    do. Another writer's status change is still synced (the local node
    lifecycle controller marks pods not Ready, and AK must put the twin's
    status back), and so is any change beyond the status."""
    controller, _, writes = rig
    see(controller, local_pod())
    await controller.sync(KEY)  # creates the twin
    await controller.sync(KEY)  # the twin's status: written
    assert writes.statuses == [{"phase": "Running", "podIP": "10.0.0.9"}]
    controller.queue = type(controller.queue)("pods")  # drained
    echo = local_pod(phase="Running", podIP="10.0.0.9")
    echo["metadata"]["resourceVersion"] = "2"
    see(controller, echo)
    assert len(controller.queue) == 0
    # Its echo seen, a settled pod's written status is not kept (memory at 10,000 pods).
    assert KEY not in controller._wrote
    theirs = local_pod(phase="Running", podIP="10.0.0.9")
    theirs["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    theirs["metadata"]["resourceVersion"] = "3"
    see(controller, theirs)
    assert len(controller.queue) == 1
    controller.queue = type(controller.queue)("pods")
    labelled = local_pod(phase="Running", podIP="10.0.0.9")
    labelled["metadata"]["labels"] = {"new": "label"}
    labelled["metadata"]["resourceVersion"] = "4"
    see(controller, labelled)
    assert len(controller.queue) == 1
