"""Which Services the controller claims for which pods, driven through its caches.

Nothing connects: the clients are offline and each test feeds the watches'
caches the way the informers would; the copies themselves are written by the
shared Replicator, which the cluster tests exercise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ak.events import EventRecorder
from ak.kube.registry import Informers
from ak.pods.controller import PodController
from ak.services.controller import ServiceController
from tests.unit.fixtures import offline_client
from tests.unit.test_pod_controller import MemoryProvider, MemoryWrites

Obj = dict[str, Any]
SVC = ("ns", "web")


def pod(name: str, labels: dict[str, str], phase: str = "Running") -> Obj:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "labels": labels},
        "spec": {"nodeName": "vk"},
        "status": {"phase": phase},
    }


def service(selector: dict[str, str] | None, name: str = "web") -> Obj:
    spec: Obj = {"ports": [{"port": 80}]}
    if selector is not None:
        spec["selector"] = selector
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "ns", "uid": "s"},
        "spec": spec,
    }


@pytest.fixture
async def rig() -> AsyncIterator[tuple[PodController, ServiceController]]:
    local, remote = offline_client("local"), offline_client("remote")
    informers = Informers()
    pods = PodController(local, "vk", MemoryProvider(), MemoryWrites(), informers=informers)
    services = ServiceController(
        local,
        remote,
        "vk",
        "vk",
        pods=pods,
        events=EventRecorder(local, "vk"),
        informers=informers,
    )
    informers.local_pods.follow("services", services.on_pod)
    yield pods, services
    await local.aclose()
    await remote.aclose()


Rig = tuple[PodController, ServiceController]


def see_pod(pods: PodController, obj: Obj, kind: str = "MODIFIED") -> None:
    pods.local_pods._apply({"type": kind, "object": obj})


def see_service(services: ServiceController, obj: Obj, kind: str = "MODIFIED") -> None:
    services.local_services._apply({"type": kind, "object": obj})


def claims(services: ServiceController, key: tuple[str, str] = SVC) -> set[tuple[str, str]]:
    return set(services.replicator.users.get(key, ()))


def select(services: ServiceController, key: tuple[str, str] = SVC) -> bool:
    return services._select(key, services.local_services.get(*key))


async def test_claims_follow_pods_and_selector(rig: Rig) -> None:
    pods, services = rig
    see_service(services, service({"app": "web"}))
    see_pod(pods, pod("a", {"app": "web"}))
    see_pod(pods, pod("b", {"app": "db"}))
    assert select(services)
    assert claims(services) == {("ns", "a")}
    see_service(services, service({"app": "db"}))
    assert select(services)
    assert claims(services) == {("ns", "b")}
    see_pod(pods, pod("b", {"app": "db"}), "DELETED")
    assert not select(services)
    assert claims(services) == set()


async def test_finished_pods_and_selectorless_services_claim_nothing(rig: Rig) -> None:
    pods, services = rig
    see_pod(pods, pod("done", {"app": "web"}, phase="Succeeded"))
    see_service(services, service({"app": "web"}))
    see_service(services, service(None, name="manual"))
    assert not select(services)
    assert not select(services, ("ns", "manual"))


async def test_a_deleted_service_is_unclaimed(rig: Rig) -> None:
    pods, services = rig
    see_pod(pods, pod("a", {"app": "web"}))
    see_service(services, service({"app": "web"}))
    assert select(services)
    see_service(services, service({"app": "web"}), "DELETED")
    assert not select(services)
    assert claims(services) == set()


async def test_only_label_or_phase_changes_requeue_services(rig: Rig) -> None:
    pods, services = rig
    see_service(services, service({"app": "web"}))
    see_pod(pods, pod("a", {"app": "web"}))
    await drain(services)
    status_only = pod("a", {"app": "web"})
    status_only["status"]["podIP"] = "10.0.0.1"
    see_pod(pods, status_only)
    assert len(services.queue) == 0
    see_pod(pods, pod("a", {"app": "web", "v": "2"}))
    assert len(services.queue) == 1
    await drain(services)
    see_pod(pods, pod("a", {"app": "web", "v": "2"}, phase="Failed"))
    assert len(services.queue) == 1


async def drain(services: ServiceController) -> None:
    # The queue's keys, taken as its workers would, without running them.
    while len(services.queue):
        key = await services.queue._get()
        services.queue._done(key)
