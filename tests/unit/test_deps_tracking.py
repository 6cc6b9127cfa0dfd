"""What the dependency controller tracks for a pod, as the pod changes."""

from __future__ import annotations

from ak.core.types import Obj
from ak.deps.controller import DependencyController
from ak.kube.registry import Informers
from tests.unit.fixtures import offline_client


def _pod(*ephemeral: Obj) -> Obj:
    return {
        "metadata": {"namespace": "ns", "name": "app", "uid": "u1"},
        "spec": {
            "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
            "ephemeralContainers": list(ephemeral),
        },
    }


async def test_a_debug_container_added_later_is_tracked_too() -> None:
    deps = DependencyController(
        offline_client("local"), offline_client("remote"), "vk", "vk", informers=Informers()
    )
    assert [r.name for r in deps.track(_pod())] == ["cfg"]
    assert deps.track(_pod()) == []  # known: cheap
    debug: Obj = {"name": "dbg", "envFrom": [{"secretRef": {"name": "later"}}]}
    assert {r.name for r in deps.track(_pod(debug))} == {"cfg", "later"}
    assert deps.users[("ns", "Secret", "later")] == {("ns", "app")}
    assert deps.users[("ns", "ConfigMap", "cfg")] == {("ns", "app")}
    assert deps.track(_pod(debug)) == []
