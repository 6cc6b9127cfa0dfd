"""Who follows whose changes: the wiring ``ak/run.py`` makes through one registry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ak.config import load_config
from ak.core.names import remote_namespace
from ak.core.types import Obj
from ak.kube.registry import Informers, Topic
from ak.run import Provider
from tests.unit.fixtures import offline_client


def test_a_topic_calls_its_followers_in_order() -> None:
    topic: Topic[str, int] = Topic("t")
    seen: list[tuple[str, str, int]] = []
    topic.follow("a", lambda s, n: seen.append(("a", s, n)))
    topic.follow("b", lambda s, n: seen.append(("b", s, n)))
    topic.publish("x", 1)
    assert seen == [("a", "x", 1), ("b", "x", 1)]
    assert topic.followers == ["a", "b"]


def test_one_registry_one_watch_per_collection_and_selector() -> None:
    client = offline_client("remote")
    informers = Informers()
    first = informers.shared(client, "/api/v1/secrets", "n=x", "remote secrets")
    assert informers.shared(client, "/api/v1/secrets", "n=x", "again") is first
    assert informers.shared(client, "/api/v1/secrets", "n=y", "other") is not first
    assert informers.shared(client, "/api/v1/configmaps", "n=x", "cms") is not first


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    local, remote = offline_client("local"), offline_client("remote")
    config = load_config({"node_name": "vk", "pod_address_range": "10.250.0.0/24"}, {})
    try:
        yield Provider(config, local, remote)
    finally:
        await local.aclose()
        await remote.aclose()


async def test_run_wires_every_follower_through_the_registry(provider: Provider) -> None:
    """Nothing subscribes in a constructor: this list is the whole graph."""
    topics = [line for line in provider.informers.describe() if line.startswith("topic")]
    assert topics == [
        "topic local pods -> services, network policies, disruption budgets, pod proxy",
        "topic remote pods -> network policies",
        "topic remote namespaces -> event mirror",
        "topic local services -> pod proxy",
    ]
    watches = [line for line in provider.informers.describe() if line.startswith("watch")]
    # Secrets (identities, copies), ConfigMaps (root CA, copies), namespaces (pods, quotas).
    assert len(watches) == 3, watches


def _pod(name: str, port: int) -> Obj:
    return {
        "kind": "Pod",
        "metadata": {"namespace": "apps", "name": name, "uid": "u", "resourceVersion": "1"},
        "spec": {
            "nodeName": "vk",
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": port}]}],
        },
        "status": {"phase": "Pending"},
    }


async def test_a_local_pod_reaches_its_followers(provider: Provider) -> None:
    assert provider.proxy is not None
    assert len(provider.proxy.queue) == 0
    provider.pods.local_pods._apply({"type": "ADDED", "object": _pod("web", 80)})
    assert len(provider.proxy.queue) == 1  # the proxy follows local pods


async def test_a_remote_namespace_reaches_the_event_mirror(provider: Provider) -> None:
    rns = remote_namespace("vk", "apps")
    namespace = {
        "kind": "Namespace",
        "metadata": {
            "name": rns,
            "resourceVersion": "1",
            "labels": {"actual.vk/node-name": "vk", "actual.vk/namespace": "apps"},
        },
    }
    provider.remote_pods.remote_namespaces.shared.informer._apply(
        {"type": "ADDED", "object": namespace}
    )
    assert rns in provider.event_mirror.watches
