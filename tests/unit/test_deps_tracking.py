"""What the dependency controller tracks for a pod, as the pod changes."""

from __future__ import annotations

import ssl

from ak.core.types import Obj
from ak.deps.controller import DependencyController
from ak.kube.client import KubeClient
from ak.kube.config import ClusterConfig


def _client(name: str) -> KubeClient:
    # Never connects: tracking only records claims and starts (unstarted) watches.
    conf = ClusterConfig(
        server="https://127.0.0.1:9", ssl_context=ssl.create_default_context(),
        token=lambda: None, source="test",
    )  # fmt: skip
    return KubeClient(conf, name=name)


def _pod(*ephemeral: Obj) -> Obj:
    return {
        "metadata": {"namespace": "ns", "name": "app", "uid": "u1"},
        "spec": {
            "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
            "ephemeralContainers": list(ephemeral),
        },
    }


async def test_a_debug_container_added_later_is_tracked_too() -> None:
    deps = DependencyController(_client("local"), _client("remote"), "vk", "vk")
    assert [r.name for r in deps.track(_pod())] == ["cfg"]
    assert deps.track(_pod()) == []  # known: cheap
    debug: Obj = {"name": "dbg", "envFrom": [{"secretRef": {"name": "later"}}]}
    assert {r.name for r in deps.track(_pod(debug))} == {"cfg", "later"}
    assert deps.users[("ns", "Secret", "later")] == {("ns", "app")}
    assert deps.users[("ns", "ConfigMap", "cfg")] == {("ns", "app")}
    assert deps.track(_pod(debug)) == []
